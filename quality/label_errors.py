"""Find labels that are probably wrong: confident learning.

Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70 (2021). From out-of-sample predicted probabilities, count how many
examples given label i confidently belong to class j (the confident joint), then, for
each off-diagonal (i, j), flag that many examples of given label i with the largest
margin ``p_j - p_i`` (the paper's "prune by noise rate").

>>> labels = np.array([0, 0, 0, 1, 1, 1])
>>> pred_probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.1, .9], [.3, .7]])
>>> find_label_issues(labels, pred_probs)
array([2])
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from labelloop.core.errors import ValidationError

RANKINGS = ("self_confidence", "normalized_margin")
_TOLERANCE = 1e-6  # probabilities within this of a threshold count as reaching it


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray, *,
                      rank_by: str = "self_confidence") -> np.ndarray:
    """Indices of likely label errors, most suspect first.

    ``labels``: ``(n,)`` int given labels in ``[0, k)``; ``pred_probs``: ``(n, k)``
    out-of-sample probabilities (see :func:`out_of_fold_probs`). ``rank_by``:
    ``self_confidence`` (lowest ``p[given]`` first) or ``normalized_margin`` (lowest
    ``p[given] - max_other p`` first). Each class keeps at least one example, and an
    example whose given label is the model's top prediction is never flagged.
    """
    y, p = _check(labels, pred_probs)
    if rank_by not in RANKINGS:
        raise ValidationError(f"unknown ranking {rank_by!r}; use one of {RANKINGS}",
                              where="rank_by")
    prune = _keep_one_per_class(confident_joint(y, p), np.bincount(y, minlength=p.shape[1]))
    issue = np.zeros(y.size, dtype=bool)
    for i, j in zip(*np.nonzero(prune), strict=True):
        if i == j:
            continue
        members = np.nonzero(y == i)[0]
        margin = p[members, j] - p[members, i]
        issue[members[np.argsort(-margin, kind="stable")[: prune[i, j]]]] = True
    issue &= p.argmax(axis=1) != y
    found = np.nonzero(issue)[0]
    score = label_quality(y[found], p[found], rank_by)
    return found[np.argsort(score, kind="stable")]


def confident_joint(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Calibrated confident joint ``(k, k)``: rows given label, columns estimated true label.

    Threshold t_j = mean ``p_j`` over examples given label j. An example counts in
    (given, j) when ``p_j >= t_j`` and j is its most probable class among those above
    threshold. Rows are then rescaled to the given-label counts and rounded keeping row
    totals (Northcutt et al. 2021, eq. 1-3).
    """
    y, p = _check(labels, pred_probs)
    k = p.shape[1]
    label_counts = np.bincount(y, minlength=k)
    self_conf = np.bincount(y, weights=p[np.arange(y.size), y], minlength=k)
    # a class nobody was given has no threshold: no example is confidently in it
    thresholds = np.where(label_counts > 0, self_conf / np.maximum(label_counts, 1), np.inf)
    above = p >= thresholds - _TOLERANCE
    confident = above.any(axis=1)
    guess = np.where(above, p, -np.inf).argmax(axis=1)
    cj = np.bincount(y[confident] * k + guess[confident], minlength=k * k).reshape(k, k)
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    scaled = cj / cj.sum(axis=1, keepdims=True) * label_counts[:, None]
    return _round_keeping_row_totals(scaled)


def label_quality(labels: np.ndarray, pred_probs: np.ndarray,
                  method: str = "self_confidence") -> np.ndarray:
    """Per-example label quality ``(n,)``, low = suspect: ``p[given]`` or the margin
    ``p[given] - max_{j != given} p_j``."""
    rows = np.arange(labels.size)
    given = pred_probs[rows, labels]
    if method == "self_confidence":
        return given
    others = pred_probs.copy()
    others[rows, labels] = -np.inf
    return given - others.max(axis=1) if others.shape[1] > 1 else given


def out_of_fold_probs(X: np.ndarray, y: np.ndarray, n_folds: int = 5,
                      seed: int = 0) -> np.ndarray:
    """Out-of-sample ``pred_probs`` ``(n, k)``, k = ``y.max() + 1``, from stratified
    ``n_folds``-fold cross-validation of a logistic regression. A class missing from a
    training fold gets probability 0 on that fold."""
    x = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValidationError(f"X {x.shape} and y {y.shape} do not match", where="X")
    if y.size == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValidationError("y must be non-negative int labels", where="y")
    if n_folds < 2:
        raise ValidationError(f"n_folds {n_folds} < 2", where="n_folds")
    probs = np.zeros((y.size, int(y.max()) + 1))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for train, held_out in folds.split(x, y):
        model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
        probs[np.ix_(held_out, model.classes_)] = model.predict_proba(x[held_out])
    return probs


def _keep_one_per_class(cj: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Shrink each row's off-diagonal counts so that every given class keeps an example."""
    prune = cj.copy()
    np.fill_diagonal(prune, 0)
    for i in np.nonzero(prune.sum(axis=1) > np.maximum(label_counts - 1, 0))[0]:
        budget = max(label_counts[i] - 1, 0)
        prune[i] = _round_keeping_row_totals(
            prune[i] / prune[i].sum() * budget, total=np.array([budget]))
    return prune


def _round_keeping_row_totals(m: np.ndarray, total: np.ndarray | None = None) -> np.ndarray:
    """Round each row of ``m`` to ints whose sum is the row's rounded total (largest
    remainders get the leftover units)."""
    m2 = np.atleast_2d(m)
    target = np.rint(m2.sum(axis=1)).astype(int) if total is None else total
    floor = np.floor(m2).astype(int)
    short = target - floor.sum(axis=1)
    order = np.argsort(-(m2 - floor), axis=1, kind="stable")
    bump = np.arange(m2.shape[1])[None, :] < short[:, None]
    np.put_along_axis(floor, order, np.take_along_axis(floor, order, axis=1) + bump, axis=1)
    return floor.reshape(m.shape)


def _check(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(labels), np.asarray(pred_probs, dtype=float)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValidationError(f"labels {y.shape} and pred_probs {p.shape} do not match",
                              where="pred_probs")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0
                   or y.max() >= p.shape[1]):
        raise ValidationError(f"labels must be ints in [0, {p.shape[1]})", where="labels")
    if p.size and (p.min() < 0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3)):
        raise ValidationError("pred_probs rows must be probabilities summing to 1",
                              where="pred_probs")
    return y.astype(np.int64), p
