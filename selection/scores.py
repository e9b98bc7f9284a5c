"""Pure score functions: arrays in, arrays out. Higher always means "more worth labeling".

Shapes: ``n`` items, ``c`` classes, ``d`` embedding dimensions, ``t`` MC-dropout passes.
Uncertainty measures follow Settles (2009), "Active Learning Literature Survey", section 3.1.

>>> import numpy as np
>>> p = np.array([[0.5, 0.5], [0.9, 0.1]])
>>> margin(p).round(2).tolist()
[1.0, 0.2]
"""

from __future__ import annotations

import numpy as np

from labelloop.core.errors import ValidationError

_EPS = 1e-12


def _check_probs(probs: np.ndarray, where: str = "probs") -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] == 0:
        raise ValidationError(f"{where} must be a 2-d (n, c) array, got shape {probs.shape}",
                              where=where)
    if probs.dtype.kind not in "fc":
        probs = probs.astype(np.float64)
    return probs


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - max_c p(c|x). probs: (n, c) -> (n,) in [0, 1 - 1/c] (Lewis & Gale, 1994)."""
    probs = _check_probs(probs)
    return 1.0 - probs.max(axis=1)


def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (p_top1 - p_top2). probs: (n, c) -> (n,) in [0, 1]; 1 = a tie at the top.

    Scheffer, Decomain & Wrobel (2001), "Active hidden Markov models for information
    extraction". With one class the margin is taken as 1 (nothing to separate), score 0.
    """
    probs = _check_probs(probs)
    if probs.shape[1] == 1:
        return np.zeros(len(probs), dtype=probs.dtype)
    # partition, not sort: O(c) per row; the two largest are the last two columns.
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy -sum_c p log p in nats. probs: (n, c) -> (n,) in [0, log c].

    Shannon (1948); as a query score, Settles & Craven (2008). 0 log 0 is taken as 0.
    """
    probs = _check_probs(probs)
    p = np.clip(probs, 0.0, 1.0)
    return -(p * np.log(np.maximum(p, _EPS))).sum(axis=1)


def bald(mc_probs: np.ndarray) -> np.ndarray:
    """Mutual information between the label and the model weights (BALD).

    mc_probs: (t, n, c) class probabilities from t stochastic forward passes -> (n,) >= 0:
    H[mean_t p] - mean_t H[p]. Houlsby et al. (2011), "Bayesian Active Learning for
    Classification and Preference Learning"; Gal, Islam & Ghahramani (2017), "Deep Bayesian
    Active Learning with Image Data".
    """
    mc = np.asarray(mc_probs, dtype=np.float64)
    if mc.ndim != 3:
        raise ValidationError(f"mc_probs must be (t, n, c), got shape {mc.shape}",
                              where="mc_probs")
    mean = mc.mean(axis=0)
    expected = -(mc * np.log(np.maximum(mc, _EPS))).sum(axis=2).mean(axis=0)
    return np.maximum(entropy(mean) - expected, 0.0)


def density(embeddings: np.ndarray, k: int = 10, reference: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine similarity of each item to its ``k`` nearest neighbours (faiss, exact).

    embeddings: (n, d) L2-normalised; reference: (m, d) L2-normalised items to search among
    (default: ``embeddings`` itself, excluding each item's own match) -> (n,) in [-1, 1].
    The information-density term of Settles & Craven (2008), "An Analysis of Active Learning
    Strategies for Sequence Labeling Tasks", with a k-NN average in place of the full mean.
    Cost O(n * m * d): pass a sampled ``reference`` for large pools.
    """
    import faiss

    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValidationError(f"embeddings must be (n, d), got shape {emb.shape}",
                              where="embeddings")
    if k < 1:
        raise ValidationError(f"k must be at least 1, got {k}", where="k")
    self_search = reference is None
    ref = emb if self_search else np.ascontiguousarray(reference, dtype=np.float32)
    if ref.ndim != 2 or ref.shape[1] != emb.shape[1]:
        raise ValidationError(f"reference must be (m, {emb.shape[1]}), got shape {ref.shape}",
                              where="reference")
    if len(emb) == 0:
        return np.zeros(0, dtype=np.float32)
    kk = min(k + (1 if self_search else 0), len(ref))
    if kk == 0 or (self_search and kk == 1):
        return np.zeros(len(emb), dtype=np.float32)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(ref)
    sims, ids = index.search(emb, kk)
    if self_search:
        # Drop each item's own hit (the nearest, similarity 1); duplicates make this approximate.
        own = ids == np.arange(len(emb))[:, None]
        keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(kk)[None, :] < kk - 1)
        sims = sims[keep].reshape(len(emb), kk - 1)
    return sims.mean(axis=1)
