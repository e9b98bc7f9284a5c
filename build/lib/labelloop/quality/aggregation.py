"""Turn several annotators' votes into one label per item: majority, Dawid-Skene, one-coin.

Every method takes the same vote arrays, one entry per vote:

    item       (n_votes,) int in [0, n_items)
    annotator  (n_votes,) int in [0, n_annotators)
    label      (n_votes,) int in [0, n_classes)

and returns an :class:`Aggregation`. Items without votes get label ``-1`` and a uniform
posterior. ``n_annotators`` defaults to ``annotator.max() + 1``; an annotator index with
no votes gets quality ``nan``.

>>> item = np.array([0, 0, 0, 1, 1])
>>> annotator = np.array([0, 1, 2, 0, 1])
>>> label = np.array([1, 1, 0, 2, 2])
>>> aggregate("majority", item, annotator, label, n_items=3, n_classes=3).labels
array([ 1,  2, -1])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import logsumexp

from labelloop.core.errors import ValidationError


@dataclass(frozen=True)
class Aggregation:
    """Result of aggregating votes.

    ``labels`` ``(n_items,)`` int, -1 where an item has no votes; ``posterior``
    ``(n_items, n_classes)`` rows summing to 1; ``annotator_quality`` ``(n_annotators,)``
    estimated accuracy of each annotator; ``n_iter`` EM iterations run (0 for majority).
    """

    labels: np.ndarray
    posterior: np.ndarray
    annotator_quality: np.ndarray
    method: str
    n_iter: int = 0


@dataclass(frozen=True)
class _Votes:
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    n_items: int
    n_classes: int
    n_annotators: int

    def counts(self) -> np.ndarray:
        """Votes per item and class, ``(n_items, n_classes)``."""
        flat = self.item * self.n_classes + self.label
        return np.bincount(flat, minlength=self.n_items * self.n_classes).reshape(
            self.n_items, self.n_classes).astype(float)


def majority_vote(item: np.ndarray, annotator: np.ndarray, label: np.ndarray, n_items: int,
                  n_classes: int, seed: int = 0, *,
                  n_annotators: int | None = None) -> Aggregation:
    """Most frequent label per item; ties broken uniformly at random with ``seed``.

    Posterior = vote shares. Annotator quality = share of the annotator's votes that
    match the majority label (as ``crowdkit`` ``MajorityVote.skills_``).
    """
    v = _check_votes(item, annotator, label, n_items, n_classes, n_annotators)
    counts = v.counts()
    posterior = _shares(counts)
    tie_break = np.random.default_rng(seed).random(counts.shape)
    is_max = counts == counts.max(axis=1, keepdims=True)
    labels = np.where(counts.sum(axis=1) > 0, np.argmax(is_max * (1.0 + tie_break), axis=1), -1)
    hit = (labels[v.item] == v.label).astype(float)
    return Aggregation(labels, posterior, _per_annotator_mean(v, hit), "majority")


def dawid_skene(item: np.ndarray, annotator: np.ndarray, label: np.ndarray, n_items: int,
                n_classes: int, max_iter: int = 100, tol: float = 1e-6, *,
                smoothing: float = 0.01, n_annotators: int | None = None) -> Aggregation:
    """Dawid-Skene EM with one full confusion matrix per annotator.

    Dawid & Skene, "Maximum Likelihood Estimation of Observer Error-Rates Using the EM
    Algorithm", J. R. Stat. Soc. C 28(1), 1979. Initialised from majority-vote shares
    (as ``crowdkit``); ``smoothing`` is a pseudo-count added to every confusion cell and
    class prior so that no probability is 0. Stops when the mean log-likelihood per vote
    changes by less than ``tol``. Annotator quality = expected share of correct votes,
    mean over the annotator's votes of ``posterior[item, label]``.
    """
    v = _check_votes(item, annotator, label, n_items, n_classes, n_annotators)
    # one row per (annotator, observed label): sums posteriors of the items it was given to
    by_ann_label = sparse.csr_matrix(
        (np.ones(v.label.size), (v.annotator * v.n_classes + v.label, np.arange(v.label.size))),
        shape=(v.n_annotators * v.n_classes, v.label.size))

    def log_confusion(post: np.ndarray) -> np.ndarray:
        joint = (by_ann_label @ post[v.item]).reshape(v.n_annotators, v.n_classes, v.n_classes)
        conf = joint.transpose(0, 2, 1) + smoothing  # (annotator, true, observed)
        return np.log(conf / conf.sum(axis=2, keepdims=True))

    return _em(v, log_confusion, "dawid-skene", max_iter, tol, smoothing)


def one_coin(item: np.ndarray, annotator: np.ndarray, label: np.ndarray, n_items: int,
             n_classes: int, max_iter: int = 100, tol: float = 1e-6, *,
             smoothing: float = 0.01, n_annotators: int | None = None) -> Aggregation:
    """One-coin Dawid-Skene: each annotator is right with probability s_w, else picks one
    of the other classes uniformly.

    Zhang, Chen, Zhou & Jordan, "Spectral Methods Meet EM: A Provably Optimal Algorithm for
    Crowdsourcing", JMLR 17 (2016), the one-coin model. The M-step sets s_w to the
    expected share of correct votes, shrunk by ``smoothing`` pseudo-counts (one right, one
    wrong); that s_w is also the reported annotator quality.
    """
    v = _check_votes(item, annotator, label, n_items, n_classes, n_annotators)
    n_per_ann = np.bincount(v.annotator, minlength=v.n_annotators)
    others = max(v.n_classes - 1, 1)

    def log_confusion(post: np.ndarray) -> np.ndarray:
        right = np.bincount(v.annotator, weights=post[v.item, v.label], minlength=v.n_annotators)
        skill = (right + smoothing) / (n_per_ann + 2.0 * smoothing)
        wrong = np.log((1.0 - skill) / others)
        conf = np.repeat(wrong[:, None, None], v.n_classes, axis=1).repeat(v.n_classes, axis=2)
        diag = np.arange(v.n_classes)
        conf[:, diag, diag] = np.log(skill)[:, None]
        return conf

    return _em(v, log_confusion, "one-coin", max_iter, tol, smoothing)


AGGREGATORS: dict[str, Callable[..., Aggregation]] = {
    "majority": majority_vote,
    "dawid-skene": dawid_skene,
    "one-coin": one_coin,
}


def aggregate(method: str, item: np.ndarray, annotator: np.ndarray, label: np.ndarray,
              n_items: int, n_classes: int, **options: object) -> Aggregation:
    """Run the aggregator registered under ``method`` (see ``AGGREGATORS``)."""
    if method not in AGGREGATORS:
        raise ValidationError(f"unknown aggregation {method!r}; use one of "
                              f"{sorted(AGGREGATORS)}", where="method")
    return AGGREGATORS[method](item, annotator, label, n_items, n_classes, **options)


def supported_method(method: str, n_votes: int, n_classes: int, n_annotators: int,
                     votes_per_cell: float = 5.0) -> str:
    """The model the votes can support, at most ``method``.

    Dawid-Skene fits a full n_classes x n_classes confusion matrix per annotator; on a batch
    with few votes per (annotator, class) EM finds degenerate optima (one "catch-all" class
    with a flat confusion row absorbs single-vote items). Below ``votes_per_cell`` votes per
    (annotator, class) it falls back to one-coin (one accuracy per annotator), and with a
    single annotator to majority vote (the vote itself).
    """
    if n_annotators < 2:
        return "majority"
    if method == "dawid-skene" and n_votes < votes_per_cell * n_classes * n_annotators:
        return "one-coin"
    return method


def _em(v: _Votes, log_confusion: Callable[[np.ndarray], np.ndarray], method: str,
        max_iter: int, tol: float, smoothing: float) -> Aggregation:
    """EM shared by the confusion-matrix models.

    ``log_confusion(posterior)`` is the M-step: ``(n_annotators, true, observed)`` log
    probabilities. The E-step multiplies, per item, the class prior by each vote's
    likelihood (a sum of logs over the item's votes).
    """
    counts = v.counts()
    voted = counts.sum(axis=1) > 0
    post = _shares(counts)
    by_item = sparse.csr_matrix((np.ones(v.item.size), (v.item, np.arange(v.item.size))),
                                shape=(v.n_items, v.item.size))
    previous, n_iter = -np.inf, 0
    while n_iter < max_iter:
        n_iter += 1
        log_conf = log_confusion(post)
        prior = post[voted].sum(axis=0) + smoothing
        log_joint = np.log(prior / prior.sum()) + by_item @ log_conf[v.annotator, :, v.label]
        norm = logsumexp(log_joint, axis=1, keepdims=True)
        post = np.where(voted[:, None], np.exp(log_joint - norm), 1.0 / v.n_classes)
        loglik = float(norm[voted].sum()) / max(v.item.size, 1)
        if abs(loglik - previous) < tol:
            break
        previous = loglik
    labels = np.where(voted, post.argmax(axis=1), -1)
    quality = _per_annotator_mean(v, post[v.item, v.label])
    return Aggregation(labels, post, quality, method, n_iter)


def _shares(counts: np.ndarray) -> np.ndarray:
    """Row-normalised counts; a row without votes becomes uniform."""
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1.0), 1.0 / counts.shape[1])


def _per_annotator_mean(v: _Votes, per_vote: np.ndarray) -> np.ndarray:
    n = np.bincount(v.annotator, minlength=v.n_annotators)
    total = np.bincount(v.annotator, weights=per_vote, minlength=v.n_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def _check_votes(item: np.ndarray, annotator: np.ndarray, label: np.ndarray, n_items: int,
                 n_classes: int, n_annotators: int | None) -> _Votes:
    arrays = {}
    for name, arr in (("item", item), ("annotator", annotator), ("label", label)):
        a = np.asarray(arr)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise ValidationError(f"{name} must be a 1-d int array, got {a.dtype} {a.shape}",
                                  where=name)
        arrays[name] = a.astype(np.int64)
    if not arrays["item"].size == arrays["annotator"].size == arrays["label"].size:
        raise ValidationError("item, annotator and label differ in length", where="label")
    if n_items < 0 or n_classes < 1:
        raise ValidationError(f"n_items={n_items}, n_classes={n_classes}", where="n_classes")
    n_ann = (int(arrays["annotator"].max()) + 1 if arrays["annotator"].size else 0) \
        if n_annotators is None else n_annotators
    for name, bound in (("item", n_items), ("annotator", n_ann), ("label", n_classes)):
        a = arrays[name]
        bad = np.nonzero((a < 0) | (a >= bound))[0]
        if bad.size:
            raise ValidationError(f"{name} {a[bad[0]]} outside [0, {bound})",
                                  where=f"{name}[{bad[0]}]")
    return _Votes(arrays["item"], arrays["annotator"], arrays["label"], n_items, n_classes,
                  n_ann)
