"""Pre-label: real MiniLM, cached embeddings, zero-shot cold start, user model paths."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.core.errors import ValidationError
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.calibration import expected_calibration_error, fit_temperature
from labelloop.prelabel.encoders import load_encoder, resolve_model_path
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.service import prelabel_project
from labelloop.store.db import open_session
from labelloop.store.models import Embedding, Item, Prediction


def test_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = ["I lost my card yesterday", "What is the exchange rate for euros?"]
    ours = load_encoder().encode(texts)
    ref = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    theirs = ref.encode(texts, normalize_embeddings=True)
    assert ours.shape == (2, 384)
    assert np.all((ours * theirs).sum(axis=1) > 0.9999)


def test_user_model_path_loads_through_transformers(tmp_path):
    # A user's own Hugging Face model folder: here a copy of the packaged files.
    import shutil

    src = resolve_model_path("all-MiniLM-L6-v2")
    dst = tmp_path / "my-model"
    shutil.copytree(src, dst)
    enc = load_encoder(str(dst))
    assert enc.encode(["hello"]).shape == (1, 384)
    with pytest.raises(ValidationError, match="nothing is downloaded"):
        load_encoder("some-org/some-model-not-here")


def test_zero_shot_prelabel_and_embedding_cache(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        first = prelabel_project(s, p, settings)
        assert first.n_new == first.n_items == s.scalar(select(func.count(Item.id)))
        n_emb = s.scalar(select(func.count(Embedding.id)))
        again = prelabel_project(s, p, settings)
        assert again.n_new == 0
        assert s.scalar(select(func.count(Embedding.id))) == n_emb
        preds = s.execute(select(Prediction.label, Item.given_label, Prediction.probs)
                          .join(Item, Item.id == Prediction.item_id)).all()
    accuracy = np.mean([pred == given for pred, given, _ in preds])
    assert accuracy > 0.5, "zero-shot on label names should beat chance (1/8) by far"
    # a suggestion's probabilities are keyed by label name, and its label is their top one
    assert all(set(probs) == set(p.labels) and abs(sum(probs.values()) - 1) < 1e-3
               and max(probs, key=probs.get) == pred for pred, _, probs in preds)


def test_classifier_head_maps_unseen_labels_to_zero_and_calibrates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = np.where(x[:, 0] > 0, "a", "b")
    head = ClassifierHead.fit(["a", "b", "c"], x, list(y))
    probs = head.predict_proba(x)
    assert probs.shape == (200, 3) and np.allclose(probs[:, 2], 0)
    logits = head.logits(x)
    t = fit_temperature(logits, (y == "b").astype(int))
    assert t > 0
    ece = expected_calibration_error(probs[:, :2], (y == "b").astype(int))
    assert 0 <= ece < 0.2


def test_unknown_runtime_is_a_validation_error():
    with pytest.raises(ValidationError, match="unknown encoder runtime 'tensorrt'"):
        load_encoder(runtime="tensorrt")


def test_a_head_pickled_under_the_old_module_names_still_loads(tmp_path, banking):
    """Heads stored before the stages moved under ``labelloop`` name ``prelabel.heads``."""
    import sys

    from labelloop.prelabel import heads
    from labelloop.prelabel.heads import ClassifierHead

    X, y, _ = banking  # noqa: N806
    head = ClassifierHead.fit([str(c) for c in range(10)], X, [str(v) for v in y])
    path = tmp_path / "old.joblib"
    saved = sys.modules.get("prelabel.heads")
    sys.modules["prelabel.heads"] = heads  # write it as the old code did
    ClassifierHead.__module__ = "prelabel.heads"
    try:
        head.save(path)
    finally:
        ClassifierHead.__module__ = "labelloop.prelabel.heads"
        del sys.modules["prelabel.heads"]
        if saved is not None:
            sys.modules["prelabel.heads"] = saved
    assert b"prelabel.heads" in path.read_bytes() and b"labelloop.prelabel.heads" not in \
        path.read_bytes()
    loaded = ClassifierHead.load(path)
    assert np.allclose(loaded.predict_proba(X[:5]), head.predict_proba(X[:5]))
