"""What every strategy sees (``Pool``), the one interface (``Strategy``), and shared checks.

Shapes: ``n_pool`` unlabeled items, ``n_classes`` labels, ``d`` embedding dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from labelloop.core.errors import EmptyPoolError, ValidationError


@dataclass
class Pool:
    """The unlabeled pool as arrays.

    probs: (n_pool, n_classes) predicted probabilities, or None at cold start.
    embeddings: (n_pool, d) float32, L2-normalised, or None.
    labeled_embeddings: (n_labeled, d) float32 of items already labeled, or None.
    labeled_y: (n_labeled,) int labels of those items, or None.
    class_boost: (n_classes,) weights >= 1 for targeted classes (remediation), or None.
    model: optional torch module mapping embeddings (m, d) to logits (m, n_classes), used by
        MC-dropout strategies ("bald").
    """

    probs: np.ndarray | None
    embeddings: np.ndarray | None
    labeled_embeddings: np.ndarray | None = None
    labeled_y: np.ndarray | None = None
    class_boost: np.ndarray | None = None
    model: object | None = None

    @property
    def size(self) -> int:
        """n_pool: rows of ``probs`` or ``embeddings`` (they must agree)."""
        sizes = {len(a) for a in (self.probs, self.embeddings) if a is not None}
        if not sizes:
            raise ValidationError("the pool has neither predicted probabilities nor embeddings",
                                  where="pool")
        if len(sizes) > 1:
            raise ValidationError(f"pool.probs has {len(self.probs)} rows but pool.embeddings "  # type: ignore[arg-type]
                                  f"has {len(self.embeddings)}", where="pool")  # type: ignore[arg-type]
        return sizes.pop()


@runtime_checkable
class Strategy(Protocol):
    """One query strategy. ``select`` returns (n,) distinct pool indices, most valuable first."""

    name: str

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray: ...


def check_request(pool: Pool, n: int) -> int:
    """The number of items to return: ``min(n, n_pool)``.

    Raises ``ValidationError`` for n <= 0 and ``EmptyPoolError`` for an empty pool.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ValidationError(f"n must be an integer, got {n!r}", where="n")
    if n <= 0:
        raise ValidationError(f"n must be at least 1, got {n}", where="n")
    size = pool.size
    if size == 0:
        raise EmptyPoolError("the pool has no unlabeled items to select from", where="pool")
    return int(min(n, size))


def require_probs(pool: Pool, strategy: str) -> np.ndarray:
    """pool.probs as a float (n_pool, n_classes) array, or a ValidationError naming ``strategy``."""
    if pool.probs is None:
        raise ValidationError(
            f"strategy {strategy!r} needs predicted probabilities (pool.probs is None, a cold "
            "start); use 'default', 'kmeans', 'coreset' or 'random' until a model exists",
            where="pool.probs")
    probs = np.asarray(pool.probs)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValidationError(f"pool.probs must be (n_pool, n_classes), got shape {probs.shape}",
                              where="pool.probs")
    return probs


def require_embeddings(pool: Pool, strategy: str) -> np.ndarray:
    """pool.embeddings as float32 (n_pool, d), or a ValidationError naming ``strategy``."""
    if pool.embeddings is None:
        raise ValidationError(f"strategy {strategy!r} needs pool.embeddings",
                              where="pool.embeddings")
    emb = np.ascontiguousarray(pool.embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValidationError(f"pool.embeddings must be (n_pool, d), got shape {emb.shape}",
                              where="pool.embeddings")
    return emb


def lazy_embeddings(pool: Pool, strategy: str) -> np.ndarray:
    """pool.embeddings as they are when they read rows on demand (``__getitem__`` with an
    index array, as ``prelabel.arrays.StoredVectors``), else as ``require_embeddings``:
    for strategies that touch only some rows."""
    if pool.embeddings is not None and hasattr(pool.embeddings, "rows"):
        return pool.embeddings  # type: ignore[return-value]
    return require_embeddings(pool, strategy)


def take_rows(emb: object, index: np.ndarray) -> np.ndarray:
    """float32 rows ``index`` of ``emb`` (an array, or vectors read on demand)."""
    rows = emb.rows(index) if hasattr(emb, "rows") else np.asarray(emb)[index]
    return np.ascontiguousarray(rows, dtype=np.float32)


def labeled_embeddings(pool: Pool, d: int) -> np.ndarray | None:
    """pool.labeled_embeddings as float32 (n_labeled, d), None when absent or empty."""
    if pool.labeled_embeddings is None or len(pool.labeled_embeddings) == 0:
        return None
    lab = np.ascontiguousarray(pool.labeled_embeddings, dtype=np.float32)
    if lab.ndim != 2 or lab.shape[1] != d:
        raise ValidationError(f"pool.labeled_embeddings must be (n_labeled, {d}), got shape "
                              f"{lab.shape}", where="pool.labeled_embeddings")
    return lab


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``scores`` (n,), largest first, ties in index order.

    O(n + k log k) via ``np.argpartition``.
    """
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    neg = -np.asarray(scores, dtype=np.float64)
    if k < n:
        part = np.argpartition(neg, k - 1)[:k]
    else:
        part = np.arange(n)
    return part[np.lexsort((part, neg[part]))].astype(np.int64)


def seed_from(rng: np.random.Generator) -> int:
    """A 31-bit seed drawn from ``rng``, for libraries that take an int (faiss, torch)."""
    return int(rng.integers(0, 2**31 - 1))


def checked_boost(boost: np.ndarray, n_classes: int) -> np.ndarray:
    """``pool.class_boost`` as (n_classes,) float64, or ValidationError unless positive and
    finite."""
    out = np.asarray(boost, dtype=np.float64)
    if out.shape != (n_classes,) or not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValidationError(f"class_boost must be ({n_classes},) positive finite "
                              f"weights, got {out!r}", where="pool.class_boost")
    return out
