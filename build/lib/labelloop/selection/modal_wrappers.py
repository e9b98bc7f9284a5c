"""modAL's own query strategies behind our interface, fed with cached probabilities.

modAL's functions call ``classifier.predict_proba(X)``; ``CachedProbs`` answers with the
pool's probabilities, so modAL's selection code runs unchanged and no model is refitted.
"""

from __future__ import annotations

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.selection.pool import (
    Pool,
    check_request,
    labeled_embeddings,
    require_embeddings,
    require_probs,
)


class CachedProbs:
    """A stand-in modAL estimator: ``predict_proba`` returns probs (n_pool, c) for the pool.

    ``X_training`` (n_labeled, d) is what modAL's ranked batch reads as the labeled set.
    """

    on_transformed = False

    def __init__(self, probs: np.ndarray, X_training: np.ndarray | None = None) -> None:  # noqa: N803
        self.probs = probs
        self.X_training = X_training

    def predict_proba(self, X: object) -> np.ndarray:  # noqa: N803
        if len(X) != len(self.probs):  # type: ignore[arg-type]
            raise ValidationError(f"modAL asked for {len(X)} rows, the pool has "  # type: ignore[arg-type]
                                  f"{len(self.probs)} cached", where="pool.probs")
        return self.probs


def _ranked(idx: np.ndarray, key: np.ndarray) -> np.ndarray:
    """modAL's indices (unordered, from argpartition), ordered by key descending."""
    idx = np.asarray(idx, dtype=np.int64)
    return idx[np.lexsort((idx, -np.asarray(key, dtype=np.float64)))]


class _ModalTopK:
    name = ""
    sign = 1.0  # +1: modAL returns a score to maximise; -1: a margin to minimise

    def _query(self, shim: CachedProbs, X: np.ndarray, n: int) -> tuple:  # noqa: N803
        raise NotImplementedError

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        probs = require_probs(pool, self.name)
        placeholder = np.arange(len(probs))[:, None]  # these measures never read X
        idx, values = self._query(CachedProbs(probs), placeholder, n)
        return _ranked(idx, self.sign * np.asarray(values))

    def __str__(self) -> str:
        return f"{type(self).__name__}(modAL, cached predict_proba)"


class ModalMargin(_ModalTopK):
    """modAL ``margin_sampling``. Scheffer, Decomain & Wrobel (2001), "Active Hidden Markov
    Models for Information Extraction"; modAL: Danka & Horvath (2018), arXiv:1805.00979."""

    name = "modal-margin"
    sign = -1.0

    def _query(self, shim: CachedProbs, X: np.ndarray, n: int) -> tuple:  # noqa: N803
        from modAL.uncertainty import margin_sampling

        return margin_sampling(shim, X, n_instances=n)


class ModalEntropy(_ModalTopK):
    """modAL ``entropy_sampling``. Settles & Craven (2008); modAL: Danka & Horvath (2018)."""

    name = "modal-entropy"

    def _query(self, shim: CachedProbs, X: np.ndarray, n: int) -> tuple:  # noqa: N803
        from modAL.uncertainty import entropy_sampling

        return entropy_sampling(shim, X, n_instances=n)


class ModalUncertainty(_ModalTopK):
    """modAL ``uncertainty_sampling`` (least confidence). Lewis & Gale (1994); modAL: Danka &
    Horvath (2018)."""

    name = "modal-uncertainty"

    def _query(self, shim: CachedProbs, X: np.ndarray, n: int) -> tuple:  # noqa: N803
        from modAL.uncertainty import uncertainty_sampling

        return uncertainty_sampling(shim, X, n_instances=n)


class ModalRankedBatch:
    """modAL ``uncertainty_batch_sampling``: ranked batch-mode sampling.

    Cardoso, Zhang, Chaudhuri, et al. (2017), "Ranked batch-mode active learning",
    Information Sciences 379. Scores alpha * dissimilarity to the labeled set (plus the
    items already ranked) + (1 - alpha) * least confidence, one item at a time. Slow: O(n *
    n_pool * (n_labeled + n) * d) in Python loops. With no labeled set modAL starts from all
    pairwise pool distances, O(n_pool^2) memory, so that case is refused above
    ``max_cold_pool`` items.
    """

    name = "modal-ranked-batch"
    needs_labeled = True  # similarity to the labeled set (X_training)
    max_cold_pool = 20_000

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        from modAL.batch import uncertainty_batch_sampling

        n = check_request(pool, n)
        probs = require_probs(pool, self.name)
        emb = require_embeddings(pool, self.name)
        lab = labeled_embeddings(pool, emb.shape[1])
        if lab is None and pool.size > self.max_cold_pool:
            raise ValidationError(f"modal-ranked-batch without labeled embeddings needs all "
                                  f"pairwise distances of {pool.size} items; give "
                                  "pool.labeled_embeddings or use 'default'",
                                  where="pool.labeled_embeddings")
        idx, _ = uncertainty_batch_sampling(CachedProbs(probs, X_training=lab), emb,
                                            n_instances=n)
        return np.asarray(idx, dtype=np.int64)

    def __str__(self) -> str:
        return "ModalRankedBatch(modAL uncertainty_batch_sampling, euclidean)"
