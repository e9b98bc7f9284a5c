"""The one registry of query strategies by public name, and the simple ranking strategies.

Every strategy is a small class with a ``name``, a readable ``__str__`` and
``select(pool, n, rng) -> (n,) int64`` distinct pool indices, most valuable first. Common rules,
checked once in ``selection.pool.check_request``: an empty pool raises ``EmptyPoolError``,
n <= 0 raises ``ValidationError``, n > pool size returns the whole pool (ranked).

>>> import numpy as np
>>> pool = Pool(probs=np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]]), embeddings=None)
>>> get_strategy("margin").select(pool, 2, np.random.default_rng(0)).tolist()
[1, 2]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.selection import scores
from labelloop.selection.bald import BALD
from labelloop.selection.diversity import Coreset, DensityWeighted, KMeansDiversity
from labelloop.selection.hybrid import DefaultHybrid
from labelloop.selection.modal_wrappers import (
    ModalEntropy,
    ModalMargin,
    ModalRankedBatch,
    ModalUncertainty,
)
from labelloop.selection.pool import (
    Pool,
    Strategy,
    check_request,
    checked_boost,
    require_probs,
    top_k,
)

__all__ = ["Pool", "Strategy", "get_strategy", "available_strategies"]


class RandomSampling:
    """Uniform random sampling without replacement: the baseline every strategy must beat.

    Lewis & Gale (1994) use it as the passive-learning reference; so does every AL benchmark.
    """

    name = "random"

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        return rng.choice(pool.size, size=n, replace=False).astype(np.int64)

    def __str__(self) -> str:
        return "RandomSampling()"


class _UncertaintyRanking:
    """Rank the pool by a pure uncertainty score of pool.probs, highest first."""

    name = ""
    score: Callable[[np.ndarray], np.ndarray] = staticmethod(scores.margin)

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        return top_k(type(self).score(require_probs(pool, self.name)), n)

    def __str__(self) -> str:
        return f"{type(self).__name__}(score={type(self).score.__name__})"


class LeastConfidence(_UncertaintyRanking):
    """Least-confidence sampling: 1 - max_c p(c|x). Lewis & Gale (1994), "A Sequential
    Algorithm for Training Text Classifiers", SIGIR."""

    name = "least-confidence"
    score = staticmethod(scores.least_confidence)


class MarginSampling(_UncertaintyRanking):
    """Smallest gap between the two most probable classes. Scheffer, Decomain & Wrobel (2001),
    "Active Hidden Markov Models for Information Extraction", IDA."""

    name = "margin"
    score = staticmethod(scores.margin)


class EntropySampling(_UncertaintyRanking):
    """Highest predictive entropy. Settles & Craven (2008), "An Analysis of Active Learning
    Strategies for Sequence Labeling Tasks", EMNLP (after Shannon, 1948)."""

    name = "entropy"
    score = staticmethod(scores.entropy)


class ClassBalance:
    """Margin uncertainty weighted towards targeted (or rare) classes.

    score = margin(p) * (p @ boost): the model's expected class weight, so an item whose
    second-best class is targeted is boosted too. ``pool.class_boost`` (n_classes,) names the
    targeted classes (remediation); without it the boost is the inverse labeled frequency of
    each class (rare classes first), from ``pool.labeled_y``; without either it is margin.
    After Aggarwal, Popescu & Hudelot (2020), "Active Learning for Imbalanced Datasets", WACV.
    """

    name = "class-balance"

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        probs = require_probs(pool, self.name)
        boost = self._boost(pool, probs.shape[1])
        return top_k(scores.margin(probs) * (probs @ boost), n)

    @staticmethod
    def _boost(pool: Pool, n_classes: int) -> np.ndarray:
        if pool.class_boost is not None:
            return checked_boost(pool.class_boost, n_classes)
        if pool.labeled_y is not None and len(pool.labeled_y):
            counts = np.bincount(np.asarray(pool.labeled_y, dtype=np.int64), minlength=n_classes)
            counts = counts[:n_classes]
            return counts.max() / np.maximum(counts, 1)  # >= 1; never-seen classes highest
        return np.ones(n_classes)

    def __str__(self) -> str:
        return "ClassBalance(score=margin * expected class_boost)"


_REGISTRY: dict[str, Callable[[], Strategy]] = {
    "default": DefaultHybrid,
    "random": RandomSampling,
    "least-confidence": LeastConfidence,
    "margin": MarginSampling,
    "entropy": EntropySampling,
    "bald": BALD,
    "kmeans": KMeansDiversity,
    "coreset": Coreset,
    "density-weighted": DensityWeighted,
    "class-balance": ClassBalance,
    "modal-margin": ModalMargin,
    "modal-entropy": ModalEntropy,
    "modal-uncertainty": ModalUncertainty,
    "modal-ranked-batch": ModalRankedBatch,
}


def available_strategies() -> list[str]:
    """Public strategy names, "default" first."""
    return list(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """A fresh strategy for ``name``; ValidationError listing the available names otherwise."""
    factory = _REGISTRY.get(name.strip().lower()) if isinstance(name, str) else None
    if factory is None:
        raise ValidationError(f"unknown selection strategy {name!r}; available: "
                              f"{', '.join(available_strategies())}", where="strategy")
    return factory()
