"""Neighbour smoothing: what it computes, that it helps with few labels, and how it fails."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from labelloop.core.errors import ValidationError
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.smoothing import EXACT_UP_TO, NeighbourSmoothing


def test_transform_is_the_mean_of_the_k_nearest_others(banking: tuple) -> None:
    X, _, _ = banking  # noqa: N806
    smoothing = NeighbourSmoothing(X, k=5, beta=1.0)
    out = smoothing.transform(X[:7])
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    for i in range(7):
        sims = unit @ unit[i]
        sims[i] = -np.inf  # never its own neighbour
        nearest = np.argsort(-sims)[:5]
        want = unit[i] + unit[nearest].mean(axis=0)
        np.testing.assert_allclose(out[i], want / np.linalg.norm(want), atol=1e-5)
    # A new vector (not in the reference) keeps all k neighbours; beta=0 is the identity.
    np.testing.assert_allclose(NeighbourSmoothing(X[10:], k=5, beta=0.0).transform(X[:3]),
                               unit[:3], atol=1e-6)


def test_smoothed_features_need_fewer_labels(banking: tuple) -> None:
    """10 intents, 2 labels each: on every one of 5 seeds the same logistic regression
    scores at least as well on smoothed features, and clearly better on average."""
    X, y, _ = banking  # noqa: N806
    Z = NeighbourSmoothing(X, k=10).transform(X)  # noqa: N806
    gains = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        lab = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False)
                              for c in range(10)])
        rest = np.setdiff1d(np.arange(len(y)), lab)

        def f1(features: np.ndarray, lab: np.ndarray = lab, rest: np.ndarray = rest) -> float:
            clf = LogisticRegression(C=10, max_iter=1000).fit(features[lab], y[lab])
            return float(f1_score(y[rest], clf.predict(features[rest]), average="macro"))

        gains.append(f1(Z) - f1(X))
    assert min(gains) >= -0.01 and np.mean(gains) > 0.015, gains


def test_head_pickles_with_its_neighbours_and_predicts_the_same(banking: tuple,
                                                                tmp_path) -> None:
    X, y, _ = banking  # noqa: N806
    labels = [f"intent-{i}" for i in range(10)]
    head = ClassifierHead.fit(labels, X[::3], [labels[k] for k in y[::3]],
                              smoothing=NeighbourSmoothing(X, k=10))
    again = ClassifierHead.load(head.save(tmp_path / "head.joblib"))
    np.testing.assert_allclose(again.predict_proba(X[:20]), head.predict_proba(X[:20]))
    plain = ClassifierHead.fit(labels, X[::3], [labels[k] for k in y[::3]])
    assert not np.allclose(plain.predict_proba(X[:20]), head.predict_proba(X[:20]))
    # The scikit-learn form (what MLflow stores) takes raw embeddings too.
    model = joblib.load(joblib.dump(head.sklearn_model(), tmp_path / "m.joblib")[0])
    np.testing.assert_allclose(model.predict_proba(X[:20]),
                               head.model.predict_proba(head.features(X[:20])))


def test_large_references_use_hnsw_and_find_the_same_neighbours() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(400, 32))
    ref = (centres[rng.integers(0, 400, EXACT_UP_TO + 500)] +
           0.3 * rng.normal(size=(EXACT_UP_TO + 500, 32))).astype(np.float32)
    approx = NeighbourSmoothing(ref, k=10)
    assert type(approx._index).__name__ == "IndexHNSWFlat"
    exact = NeighbourSmoothing.__new__(NeighbourSmoothing)
    exact.__setstate__({"k": 10, "beta": 1.0, "reference": approx.reference[:0]})
    import faiss

    exact.reference, exact._index = approx.reference, faiss.IndexFlatIP(32)
    exact._index.add(approx.reference)
    cos = (approx.transform(ref[:300]) * exact.transform(ref[:300])).sum(axis=1)
    assert np.median(cos) > 0.999 and cos.min() > 0.98


def test_bad_input_is_named() -> None:
    ref = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    with pytest.raises(ValidationError, match="more than k=10"):
        NeighbourSmoothing(ref[:10], k=10)
    with pytest.raises(ValidationError, match="k >= 1"):
        NeighbourSmoothing(ref, k=0)
    bad = ref.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValidationError, match="finite"):
        NeighbourSmoothing(bad)
    with pytest.raises(ValidationError, match="8 dimensions") as err:
        NeighbourSmoothing(ref).transform(np.ones((2, 4), dtype=np.float32))
    assert err.value.where == "smoothing.transform"


def test_a_stored_head_is_loaded_once_per_file_version(banking: tuple, tmp_path) -> None:
    """Loading rebuilds the neighbour index, so a head file is read once; a rewritten file
    (a fresh home reusing the path) is read again."""
    import os
    from types import SimpleNamespace

    from labelloop.prelabel.service import load_head

    X, y, _ = banking  # noqa: N806
    labels = [f"intent-{i}" for i in range(10)]
    path = ClassifierHead.fit(labels, X[::3], [labels[k] for k in y[::3]],
                              smoothing=NeighbourSmoothing(X)).save(tmp_path / "m.joblib")
    model = SimpleNamespace(kind="classifier", artifact_path=str(path), id=1)
    first = load_head(None, model, None)  # type: ignore[arg-type]
    assert load_head(None, model, None) is first  # type: ignore[arg-type]
    ClassifierHead.fit(labels, X[1::3], [labels[k] for k in y[1::3]]).save(path)
    os.utime(path, ns=(1, 1))  # a different version of the file, even within one clock tick
    again = load_head(None, model, None)  # type: ignore[arg-type]
    assert again is not first and again.smoothing is None


def _module_probs(module: object, features: np.ndarray) -> np.ndarray:
    import torch

    module.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        logits = module(torch.from_numpy(np.asarray(features, dtype=np.float32)))  # type: ignore[operator]
    return torch.softmax(logits, dim=-1).double().numpy()


def test_heads_as_dropout_modules_predict_what_the_heads_predict(banking: tuple) -> None:
    """MC-dropout strategies sample this module: with dropout off it must be the head itself
    (smoothed features, temperature, labels never trained on, binary heads, zero-shot)."""
    X, y, _ = banking  # noqa: N806
    labels = [f"intent-{i}" for i in range(10)] + ["never-seen"]
    head = ClassifierHead.fit(labels, X[::3], [labels[k] for k in y[::3]],
                              smoothing=NeighbourSmoothing(X, k=10))
    head.temperature = 0.6
    got = _module_probs(head.dropout_module(), head.features(X[:40]))
    np.testing.assert_allclose(got, head.predict_proba(X[:40]), atol=1e-5)
    assert got[:, -1].max() < 1e-9  # the label it never saw stays out
    two = y < 2
    binary = ClassifierHead.fit(labels[:2], X[two], [labels[k] for k in y[two]])
    np.testing.assert_allclose(_module_probs(binary.dropout_module(), X[two]),
                               binary.predict_proba(X[two]), atol=1e-5)
    from labelloop.prelabel.heads import ZeroShotHead

    zero = ZeroShotHead(labels[:10], X[::30][:10])
    np.testing.assert_allclose(_module_probs(zero.dropout_module(), zero.features(X[:40])),
                               zero.predict_proba(X[:40]), atol=1e-5)
    # Dropout on: the passes differ, which is what BALD measures.
    module = head.dropout_module(p=0.3)
    module.train()
    import torch

    feats = torch.from_numpy(head.features(X[:40]).astype(np.float32))
    assert not torch.allclose(module(feats), module(feats))


def test_the_index_is_saved_with_the_head_and_extended_not_rebuilt(banking: tuple,
                                                                   monkeypatch) -> None:
    """Loading a pickled smoothing reads its faiss index back (no rebuild); extending it
    with new items indexes only those, and finds the neighbours a fresh build over all of
    them finds; the original is left as it was."""
    import pickle

    from labelloop.prelabel import smoothing as module

    X, _, _ = banking  # noqa: N806
    old = NeighbourSmoothing(X[:200], k=10, item_ids=np.arange(200))
    built = []
    real_build = module._build_index
    monkeypatch.setattr(module, "_build_index", lambda ref: built.append(len(ref)) or
                        real_build(ref))
    again = pickle.loads(pickle.dumps(old))
    assert built == [] and again.item_ids.tolist() == list(range(200))
    np.testing.assert_allclose(again.transform(X[200:]), old.transform(X[200:]), atol=1e-6)
    added = []
    monkeypatch.setattr(type(again._index), "add",
                        lambda self, x, _add=type(again._index).add: added.append(len(x)) or
                        _add(self, x))
    grown = again.extended(X[200:], np.arange(200, len(X)))
    assert built == [] and added == [len(X) - 200]  # only the new rows went in
    assert grown.n_reference == len(X) and again.n_reference == 200
    assert grown.item_ids.tolist() == list(range(len(X)))
    fresh = real_build(grown.reference)
    q = np.ascontiguousarray(X[:30])
    assert (grown._index.search(q, 11)[1] == fresh.search(q, 11)[1]).all()
    np.testing.assert_allclose(grown.transform(X[:30]),
                               NeighbourSmoothing(X, k=10).transform(X[:30]), atol=1e-6)
