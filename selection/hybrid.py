"""The recommended strategy, "default": uncertainty-weighted diversity.

Shapes: ``n_pool`` unlabeled items, ``m`` candidates, ``c`` classes, ``d`` dimensions.
"""

from __future__ import annotations

import numpy as np

from labelloop.selection import scores
from labelloop.selection.diversity import (
    best_per_cluster,
    fill_farthest,
    kmeans_assign,
    project_pca,
    typical_representatives,
)
from labelloop.selection.pool import (
    Pool,
    check_request,
    checked_boost,
    lazy_embeddings,
    seed_from,
    take_rows,
    top_k,
)

_LARGE_WORK = 5e8  # multiply-adds per k-means iteration over all candidates


class DefaultHybrid:
    """Margin candidates, then one pick per k-means cluster: uncertain *and* diverse.

    1. Take the ``candidates_per_pick * n`` items with the smallest top-2 margin
       (``np.argpartition``, O(n_pool * c)).
    2. Cluster the candidates into n groups with faiss k-means (``niter`` iterations);
       from each group take its most uncertain item, so one batch does not spend many labels
       on near-duplicates of the same confusion.
    3. Order the picks by uncertainty, most uncertain first; if some clusters came out empty
       (duplicates), fill with the candidates farthest from every pick.

    With ``pool.class_boost`` (remediation targets), the uncertainty of each item is
    weighted by its expected boost ``p @ boost`` before step 1, so boosted classes are
    sampled more while the picks stay uncertain and diverse.

    Cold start (``pool.probs is None``): no model yet, so pure diversity -- one item nearest
    the centre of each k-means cluster of the embeddings (typical items first). Without
    embeddings it is plain margin sampling.

    Cluster-Margin: Citovsky et al. (2021), "Batch Active Learning at Scale", NeurIPS;
    the margin score: Scheffer et al. (2001); typical items at cold start: Hacohen, Dekel &
    Weinshall (2022), "Active Learning on a Budget: Opposite Strategies Suit High and Low
    Budgets", ICML.
    """

    name = "default"

    def __init__(self, candidates_per_pick: int = 10, niter: int = 8) -> None:
        self.candidates_per_pick = candidates_per_pick
        self.niter = niter

    def select(self, pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        n = check_request(pool, n)
        if pool.probs is None:
            return typical_representatives(lazy_embeddings(pool, self.name), n, rng)
        unc = scores.margin(pool.probs)
        if pool.class_boost is not None:
            # Remediation: weight each item by its expected class boost (p @ boost), as
            # "class-balance" does, so items likely of a targeted class come first.
            unc = unc * (pool.probs @ checked_boost(pool.class_boost, pool.probs.shape[1]))
        m = min(pool.size, max(n, self.candidates_per_pick * n))
        cand = top_k(unc, m)
        if pool.embeddings is None or m <= n:
            return cand[:n]
        emb = take_rows(pool.embeddings, cand)  # only the candidates' vectors are read
        km_rng = np.random.default_rng(seed_from(rng))
        space, per_centre = emb, 256
        if m * n * emb.shape[1] > _LARGE_WORK:
            # Large batches (1,000 of 1M): cluster on 64 principal axes and train the centres
            # on 4 sampled candidates per cluster, ~15x less work for the same
            # one-pick-per-region effect. Small batches (the usual 10-200) use everything.
            space, per_centre = project_pca(emb, 64, km_rng), 4
        assign, _ = kmeans_assign(space, n, km_rng, niter=self.niter,
                                  max_points_per_centroid=per_centre)
        picks = best_per_cluster(assign, unc[cand])
        picks = picks[np.lexsort((picks, -unc[cand][picks]))]
        return cand[fill_farthest(emb, picks, n)]

    def __str__(self) -> str:
        return (f"DefaultHybrid(margin top-{self.candidates_per_pick}n -> k-means(n), "
                f"niter={self.niter})")
