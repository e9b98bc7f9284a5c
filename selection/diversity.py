"""Diversity strategies over embeddings (faiss): k-means, core-set, density-weighted.

Shapes: ``n_pool`` unlabeled items, ``m`` candidates, ``k`` clusters, ``d`` dimensions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from labelloop.core.errors import ValidationError
from labelloop.selection import scores
from labelloop.selection.pool import (
    Pool,
    check_request,
    labeled_embeddings,
    require_embeddings,
    require_probs,
    seed_from,
    top_k,
)

# Below this many multiply-adds per k-means iteration, one thread is faster: OpenMP start-up
# and spinning threads cost ~0.1 s on a busy 2-core machine, more than the clustering itself.
_SINGLE_THREAD_WORK = 5e8


@contextmanager
def faiss_threads(work: float) -> Iterator[None]:
    """Run faiss single-threaded for small jobs (``work`` multiply-adds); restore after."""
    import faiss

    before = faiss.omp_get_max_threads()
    if work < _SINGLE_THREAD_WORK and before > 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def kmeans_assign(emb: np.ndarray, k: int, rng: np.random.Generator, niter: int = 10,
                  max_points_per_centroid: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """faiss k-means of emb (m, d) into k clusters -> (assign (m,) int64, sq_dist (m,) float32).

    ``sq_dist`` is each item's squared L2 distance to its cluster centre. k is clipped to m.
    Centres are trained on at most ``max_points_per_centroid * k`` sampled items; every item
    is then assigned to its nearest centre.
    """
    import faiss

    m, d = emb.shape
    k = int(min(k, m))
    if k <= 1:
        centre = emb.mean(axis=0, keepdims=True)
        return np.zeros(m, dtype=np.int64), ((emb - centre) ** 2).sum(axis=1).astype(np.float32)
    # min_points_per_centroid=1: small candidate sets are the normal case here, not a mistake.
    km = faiss.Kmeans(d, k, niter=niter, seed=seed_from(rng), verbose=False,
                      min_points_per_centroid=1,
                      max_points_per_centroid=max_points_per_centroid)
    with faiss_threads(float(min(m, max_points_per_centroid * k)) * k * d):
        km.train(emb)
        dist, assign = km.index.search(emb, 1)
    return assign[:, 0].astype(np.int64), dist[:, 0]


def project_pca(emb: np.ndarray, dims: int, rng: np.random.Generator,
                sample: int = 2_000) -> np.ndarray:
    """emb (m, d) -> (m, dims) float32 coordinates on the top principal axes.

    The axes come from the covariance of at most ``sample`` random rows (O(sample * d^2)), so
    clustering cost drops by d / dims at a small loss of detail (Pearson, 1901).
    """
    m, d = emb.shape
    if dims >= d:
        return emb
    rows = emb if m <= sample else emb[rng.choice(m, size=sample, replace=False)]
    centre = rows.mean(axis=0)
    centred = (rows - centre).astype(np.float64)
    _, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    axes = vecs[:, ::-1][:, :dims].astype(np.float32)
    return np.ascontiguousarray((emb - centre) @ axes)


def best_per_cluster(assign: np.ndarray, key: np.ndarray) -> np.ndarray:
    """For each non-empty cluster, the item with the largest ``key``.

    assign: (m,) cluster ids; key: (m,) -> indices into the m items, one per non-empty cluster,
    in cluster-id order.
    """
    order = np.lexsort((-key, assign))
    first = np.ones(len(order), dtype=bool)
    first[1:] = assign[order][1:] != assign[order][:-1]
    return order[first]


def fill_farthest(emb: np.ndarray, picked: np.ndarray, n: int) -> np.ndarray:
    """``picked`` plus greedy farthest-first items of emb (m, d) until n are chosen.

    Used when k-means leaves clusters empty (duplicates): the extra picks are the items least
    like anything chosen so far (Gonzalez, 1985, greedy k-center), never a copy of a pick.
    """
    picked = np.asarray(picked, dtype=np.int64)
    n = min(n, len(emb))
    if len(picked) >= n:
        return picked[:n]
    chosen = list(picked.tolist())
    if chosen:
        min_dist = 1.0 - (emb @ emb[chosen].T).max(axis=1).astype(np.float64)
    else:
        min_dist = np.full(len(emb), np.inf)
    min_dist[chosen] = -np.inf
    while len(chosen) < n:
        nxt = int(np.argmax(min_dist))
        chosen.append(nxt)
        np.minimum(min_dist, 1.0 - (emb @ emb[nxt]).astype(np.float64), out=min_dist)
        min_dist[nxt] = -np.inf
    return np.asarray(chosen, dtype=np.int64)


def typical_representatives(emb: np.ndarray, n: int, rng: np.random.Generator,
                            max_points: int = 20_000, niter: int = 10) -> np.ndarray:
    """n items, one nearest the centre of each of n k-means clusters, largest cluster first.

    emb: (n_pool, d), an array or vectors read on demand (only the sample is read). Pools
    above ``max_points`` are clustered on a random sample of that
    size (k-means cost is O(points * n * d * niter)). Used at cold start.
    """
    size = len(emb)
    sample = np.arange(size)
    if size > max(max_points, n):
        sample = np.sort(rng.choice(size, size=max(max_points, n), replace=False))
    points = np.ascontiguousarray(emb[sample], dtype=np.float32)  # read once, if stored
    assign, dist = kmeans_assign(points, n, rng, niter=niter)
    reps = best_per_cluster(assign, -dist)
    sizes = np.bincount(assign, minlength=int(assign.max()) + 1)
    reps = reps[np.argsort(-sizes[assign[reps]], kind="stable")]
    return sample[fill_farthest(points, reps, n)]


class KMeansDiversity:
    """k-means over the pool's embeddings, one item nearest each centre, largest cluster first.

    Nguyen & Smeulders (2004), "Active Learning Using Pre-clustering", ICML; as a batch
    diversity method, Zhdanov (2019), "Diverse mini-batch Active Learning". Needs no model, so
    it works at cold start. Pools above 20,000 items are clustered on a random sample.
    """

    name = "kmeans"
    niter = 10

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        emb = require_embeddings(pool, self.name)
        return typical_representatives(emb, n, rng, niter=self.niter)

    def __str__(self) -> str:
        return f"KMeansDiversity(niter={self.niter})"


class Coreset:
    """Greedy k-center core-set: repeatedly take the item farthest from everything chosen.

    Sener & Savarese (2018), "Active Learning for Convolutional Neural Networks: A Core-Set
    Approach", ICLR (the greedy 2-approximation). Distances to the labeled set come from a
    faiss exact search; at cold start the first centre is drawn at random. Cost
    O(n_pool * (n_labeled + n) * d).
    """

    name = "coreset"
    needs_labeled = True  # distances to the labeled set: the service loads its embeddings

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        import faiss

        n = check_request(pool, n)
        emb = require_embeddings(pool, self.name)
        lab = labeled_embeddings(pool, emb.shape[1])
        sq_norm = (emb.astype(np.float64) ** 2).sum(axis=1)
        picked: list[int] = []
        if lab is None:
            min_dist = np.full(pool.size, np.inf)
            self._take(emb, sq_norm, int(rng.integers(pool.size)), min_dist, picked)
        else:
            index = faiss.IndexFlatL2(emb.shape[1])
            index.add(lab)
            min_dist = index.search(emb, 1)[0][:, 0].astype(np.float64)
        while len(picked) < n:
            self._take(emb, sq_norm, int(np.argmax(min_dist)), min_dist, picked)
        return np.asarray(picked, dtype=np.int64)

    @staticmethod
    def _take(emb: np.ndarray, sq_norm: np.ndarray, i: int, min_dist: np.ndarray,
              picked: list[int]) -> None:
        """Add item i to the centres; min_dist (n_pool,) becomes distance to the nearest."""
        d = np.maximum(sq_norm + sq_norm[i] - 2.0 * (emb @ emb[i]).astype(np.float64), 0.0)
        np.minimum(min_dist, d, out=min_dist)
        min_dist[i] = -1.0  # chosen: never the farthest again
        picked.append(i)

    def __str__(self) -> str:
        return "Coreset(greedy k-center, L2)"


class DensityWeighted:
    """Information density: entropy(p) * density^beta, density = mean cosine similarity to
    the k nearest pool neighbours.

    Settles & Craven (2008), "An Analysis of Active Learning Strategies for Sequence Labeling
    Tasks", EMNLP. Only the ``candidates_per_pick * n`` most uncertain items are scored for
    density, and pools above ``max_reference`` are compared with a random sample of the other
    items, so the cost stays O(candidates * max_reference * d).
    """

    name = "density-weighted"

    def __init__(self, beta: float = 1.0, k: int = 10, candidates_per_pick: int = 20,
                 max_reference: int = 20_000) -> None:
        if beta < 0 or k < 1:
            raise ValidationError(f"beta must be >= 0 and k >= 1, got beta={beta}, k={k}",
                                  where="density-weighted")
        self.beta, self.k = beta, k
        self.candidates_per_pick, self.max_reference = candidates_per_pick, max_reference

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        probs = require_probs(pool, self.name)
        emb = require_embeddings(pool, self.name)
        unc = scores.entropy(probs)
        cand = top_k(unc, max(n, self.candidates_per_pick * n, 1000))
        if pool.size <= self.max_reference:
            dens = scores.density(emb, k=self.k)[cand]
        else:
            others = np.setdiff1d(np.arange(pool.size), cand, assume_unique=True)
            ref = rng.choice(others, size=min(self.max_reference, len(others)), replace=False)
            dens = scores.density(emb[cand], k=self.k, reference=emb[np.sort(ref)])
        value = unc[cand] * np.maximum(dens, 0.0) ** self.beta
        return cand[top_k(value, n)]

    def __str__(self) -> str:
        return f"DensityWeighted(beta={self.beta}, k={self.k})"
