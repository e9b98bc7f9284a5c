"""Whether a faster encoder runtime changes the pre-labeler's answers.

Cosine between a runtime's vectors and fp32 torch's says little about what a head does with
them: a shift that keeps cosine at 0.98 may move no prediction, or many near a boundary. So a
runtime is judged downstream, the way the product uses vectors: a ``ClassifierHead`` (C=10,
optionally over ``NeighbourSmoothing``) is trained on each runtime's own embeddings of the
same labeled slice and predicts the rest. The candidate passes when its predictions agree
with fp32's on at least ``MIN_AGREEMENT`` of the held-out items and its macro-F1 is at most
``MAX_F1_DROP`` below fp32's (issue 15). Pure: arrays in, a small dataclass out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.smoothing import NeighbourSmoothing

MIN_AGREEMENT = 0.995
MAX_F1_DROP = 0.005


@dataclass(frozen=True)
class RuntimeComparison:
    """A candidate runtime against fp32 torch on one labeled sample."""

    agreement: float  # held-out items where the heads trained on each runtime's vectors agree
    same_head_agreement: float  # ... where fp32's head gives the same label on either's vectors
    f1_reference: float  # macro-F1 of fp32's head on the held-out labels
    f1_candidate: float  # of the head trained on the candidate's vectors
    n_train: int
    n_test: int

    @property
    def f1_drop(self) -> float:
        return self.f1_reference - self.f1_candidate

    @property
    def passes(self) -> bool:
        return (min(self.agreement, self.same_head_agreement) >= MIN_AGREEMENT
                and self.f1_drop <= MAX_F1_DROP + 1e-12)  # a drop of exactly 0.005 passes

    def to_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "f1_drop": self.f1_drop, "passes": self.passes}

    def __str__(self) -> str:
        return (f"argmax agreement {self.agreement:.4f} (same head {self.same_head_agreement:.4f}"
                f"; needs >= {MIN_AGREEMENT}), macro-F1 {self.f1_candidate:.4f} vs fp32 "
                f"{self.f1_reference:.4f} (drop needs <= {MAX_F1_DROP}) on {self.n_test} "
                "held-out items")


def train_split(n: int, n_train: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted indices into ``n`` rows: a seeded random ``n_train`` and the rest."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def fit_head(x: np.ndarray, y: np.ndarray, train: np.ndarray, *, smoothing_k: int = 10,
             c: float = 10.0, seed: int = 0) -> ClassifierHead:
    """A head trained on ``x[train]`` as the product trains one: logistic regression with
    C=``c`` over neighbour smoothing with ``smoothing_k`` neighbours among all of ``x`` (the
    pool; 0: none). x: (n, d), y: (n,) str."""
    smoothing = NeighbourSmoothing(x, k=smoothing_k, seed=seed) if smoothing_k else None
    return ClassifierHead.fit(sorted(set(y.tolist())), x[train], y[train].tolist(), c=c,
                              seed=seed, smoothing=smoothing)


def predicted(head: ClassifierHead, x: np.ndarray) -> np.ndarray:
    """The head's label (n,) for each row of x (n, d)."""
    return np.asarray(head.labels)[head.predict_proba(x).argmax(axis=1)]


def compare_runtimes(x_reference: np.ndarray, x_candidate: np.ndarray, y: np.ndarray, *,
                     n_train: int, smoothing_k: int = 10, c: float = 10.0,
                     seed: int = 0) -> RuntimeComparison:
    """Both runtimes' embeddings (n, d) of the same texts, labels y (n,): train a head on
    each runtime's own vectors of the same seeded ``n_train`` items and compare on the rest
    -- argmax agreement, and macro-F1 against y. ``same_head_agreement`` applies fp32's head
    to both (what a project sees between switching runtime and its next retrain).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 8)); y = (x[:, 0] > 0).astype(int)
    >>> compare_runtimes(x, x, y, n_train=100, smoothing_k=0).passes
    True
    """
    from sklearn.metrics import f1_score

    y = np.asarray([str(v) for v in y])
    train, test = train_split(len(y), n_train, seed)
    head = fit_head(x_reference, y, train, smoothing_k=smoothing_k, c=c, seed=seed)
    ref = predicted(head, x_reference[test])
    cand = predicted(fit_head(x_candidate, y, train, smoothing_k=smoothing_k, c=c, seed=seed),
                     x_candidate[test])
    labels = head.labels
    return RuntimeComparison(
        agreement=float(np.mean(ref == cand)),
        same_head_agreement=float(np.mean(ref == predicted(head, x_candidate[test]))),
        f1_reference=float(f1_score(y[test], ref, labels=labels, average="macro",
                                    zero_division=0)),
        f1_candidate=float(f1_score(y[test], cand, labels=labels, average="macro",
                                    zero_division=0)),
        n_train=len(train), n_test=len(test))
