"""Evaluation figures a researcher reads: accuracy, macro-F1, per-class F1, top confusions,
the confusion matrix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def evaluate_predictions(y_true: list[str], y_pred: list[str], labels: list[str],
                         top_confusions: int = 10) -> dict[str, Any]:
    """Figures over the labels present in ``y_true`` (absent classes would distort macro-F1)."""
    present = [lb for lb in labels if lb in set(y_true)]
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                 zero_division=0)
    confusions = Counter((t, q) for t, q in zip(y_true, y_pred, strict=True) if t != q)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)),
        "per_class": {lb: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                           "support": int(n[i])} for i, lb in enumerate(present)},
        "confusions": [{"true": t, "predicted": q, "count": c}
                       for (t, q), c in confusions.most_common(top_confusions)],
        # every confused pair, for comparing two models pair by pair (remediate.targets)
        "confusion_pairs": [[t, q, c] for (t, q), c in sorted(confusions.items())],
        "n": len(y_true),
        "weakest": sorted(present, key=lambda lb: float(f[present.index(lb)]))[:5],
        "mean_support": float(np.mean(n)) if len(n) else 0.0,
    }


def confusion_counts(y_true: list[str], y_pred: list[str], labels: list[str]) -> np.ndarray:
    """(n_labels, n_labels) int counts: row = true label, column = predicted, in ``labels``'
    order (a label no row has keeps its row and column of zeros, so two runs compare cell by
    cell).

    >>> confusion_counts(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"]).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    """
    return confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)
