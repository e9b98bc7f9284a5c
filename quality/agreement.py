"""Inter-annotator agreement: Cohen's and Fleiss' kappa, Krippendorff's alpha, bootstrap CIs.

Undefined statistics. When every rating falls in one category, expected (chance)
disagreement is zero and every chance-corrected coefficient is 0/0: the data say
nothing about reliability (Krippendorff 2011, sec. 3). The functions here return
``nan`` in that case, like sklearn and statsmodels; :func:`batch_agreement` turns every
``nan`` into ``None`` so that no NaN reaches JSON, and reports ``percent_agreement``
(which is 1.0 there) beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from labelloop.core.errors import ValidationError

LEVELS = ("nominal", "ordinal", "interval")
_BOOT_CHUNK = 4_000_000  # resampled indices held in memory at once


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa for two raters who labelled the same items.

    Cohen, "A coefficient of agreement for nominal scales", Educ. Psychol. Meas. 20 (1960).

    ``a``, ``b``: labels of equal length ``(n_items,)``, any hashable values.
    Returns ``nan`` when chance agreement is 1 (both raters used one and the same label).

    >>> round(cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"]), 3)
    0.5
    """
    if len(a) != len(b):
        raise ValidationError(f"raters have {len(a)} and {len(b)} labels", where="b")
    if len(a) == 0:
        raise ValidationError("no items to compare", where="a")
    codes: dict[Hashable, int] = {}
    x = np.array([codes.setdefault(v, len(codes)) for v in a])
    y = np.array([codes.setdefault(v, len(codes)) for v in b])
    return _kappa_codes(x, y, len(codes))


def _kappa_codes(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Cohen's kappa of two int code arrays ``(n,)`` with values in ``[0, k)``."""
    n = x.size
    observed = float(np.mean(x == y))
    expected = float(np.bincount(x, minlength=k) @ np.bincount(y, minlength=k)) / (n * n)
    if expected >= 1.0 - 1e-12:
        return float("nan")
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa for many raters, allowing a different number of raters per item.

    Fleiss, "Measuring nominal scale agreement among many raters", Psychol. Bull. 76 (1971);
    the per-item agreement uses each item's own rater count n_i:
    ``P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``, and ``p_j`` pools all ratings.
    With equal n_i this is exactly Fleiss (1971) and ``statsmodels`` ``fleiss_kappa``.

    ``counts``: ``(n_items, n_categories)``, how many raters chose each category.
    Items with fewer than 2 ratings are ignored. Returns ``nan`` when undefined.
    """
    c = _check_counts(counts)
    n_i = c.sum(axis=1)
    c, n_i = c[n_i >= 2], n_i[n_i >= 2]
    if c.shape[0] == 0:
        return float("nan")
    p_i = ((c * c).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_j = c.sum(axis=0) / n_i.sum()
    p_e = float(p_j @ p_j)
    if p_e >= 1.0 - 1e-12:
        return float("nan")
    return (float(p_i.mean()) - p_e) / (1.0 - p_e)


def krippendorff_alpha(reliability: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha from reliability data.

    Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), coincidence-matrix form.

    ``reliability``: ``(n_coders, n_units)`` float, ``np.nan`` where a coder did not code a
    unit. The value domain is the sorted distinct values present (so ``interval`` uses the
    values themselves). ``level``: ``nominal``, ``ordinal`` or ``interval``.
    Returns ``nan`` when undefined (fewer than two distinct values, no pairable unit).

    >>> r = np.array([[1, 2, 3, 3], [1, 2, 3, 4], [np.nan, 2, 3, 4]])
    >>> round(krippendorff_alpha(r), 4)
    0.7727
    """
    r = np.asarray(reliability, dtype=float)
    if r.ndim != 2:
        raise ValidationError(f"reliability must be (n_coders, n_units), got {r.shape}",
                              where="reliability")
    present = ~np.isnan(r)
    values, codes = np.unique(r[present], return_inverse=True)
    units = np.nonzero(present)[1]
    counts = np.bincount(units * len(values) + codes.ravel(),
                         minlength=r.shape[1] * len(values)).reshape(r.shape[1], len(values))
    return krippendorff_alpha_from_counts(counts, level, values=values)


def krippendorff_alpha_from_counts(counts: np.ndarray, level: str = "nominal", *,
                                   values: np.ndarray | None = None) -> float:
    """Krippendorff's alpha from value counts.

    ``counts``: ``(n_units, n_values)``, how many coders gave each value to each unit.
    ``values``: ``(n_values,)`` numeric value of each column (default ``0..n_values-1``),
    used by ``interval``; ``ordinal`` uses only their order. Returns ``nan`` when undefined.
    """
    c = _check_counts(counts)
    _check_level(level)
    vals = _domain(c, values)
    o = np.asarray(_unit_coincidences(c).sum(axis=0)).reshape(1, c.shape[1], c.shape[1])
    return float(_alpha_from_coincidences(o, vals, level)[0])


def bootstrap_ci(statistic: Callable[[np.ndarray], Any], n_items: int, n_boot: int = 1000,
                 confidence: float = 0.95, seed: int = 0, *,
                 vectorized: bool = False) -> tuple[float, float]:
    """Percentile bootstrap interval over items (Efron & Tibshirani 1993, ch. 13).

    ``statistic(idx)`` computes the figure on resampled item indices ``idx`` of shape
    ``(n_items,)``; with ``vectorized=True`` it receives ``(n_rep, n_items)`` and returns
    ``(n_rep,)``, which avoids a Python loop. Replicates where the statistic is undefined
    (``nan``) are dropped; if more than half are, the interval is ``(nan, nan)``.
    """
    if n_items < 1 or n_boot < 1:
        raise ValidationError(f"n_items={n_items}, n_boot={n_boot}: both must be >= 1",
                              where="n_items" if n_items < 1 else "n_boot")
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence {confidence} not in (0, 1)", where="confidence")
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK // n_items)
    out = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n_items, size=(min(chunk, n_boot - start), n_items))
        if vectorized:
            out.append(np.asarray(statistic(idx), dtype=float).reshape(-1))
        else:
            out.append(np.array([statistic(row) for row in idx], dtype=float))
    reps = np.concatenate(out)
    reps = reps[np.isfinite(reps)]
    if reps.size * 2 < n_boot:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(reps, [tail, 1.0 - tail])
    return float(low), float(high)


def alpha_bootstrap_ci(counts: np.ndarray, level: str = "nominal", n_boot: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of Krippendorff's alpha, resampling units (rows of ``counts``).

    Vectorised: each unit's coincidence contribution is precomputed once, so a replicate
    is one sparse product of unit multiplicities ``(n_rep, n_units)`` with them.
    """
    c = _check_counts(counts)
    _check_level(level)
    vals = _domain(c, None)
    per_unit = _unit_coincidences(c).T.tocsr()  # (V*V, n_units)
    n_units, v = c.shape

    def statistic(idx: np.ndarray) -> np.ndarray:
        rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
        mult = np.bincount(rows * n_units + idx.ravel(), minlength=idx.shape[0] * n_units)
        o = (per_unit @ mult.reshape(idx.shape[0], n_units).T.astype(float)).T
        return _alpha_from_coincidences(o.reshape(-1, v, v), vals, level)

    return bootstrap_ci(statistic, n_units, n_boot, confidence, seed, vectorized=True)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2:
        raise ValidationError(f"counts must be (n_items, n_categories), got {c.shape}",
                              where="counts")
    if c.size and (not np.issubdtype(c.dtype, np.number) or c.min() < 0):
        raise ValidationError("counts must be non-negative numbers", where="counts")
    return c.astype(float)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValidationError(f"unknown level {level!r}; use one of {LEVELS}", where="level")


def _domain(c: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.arange(c.shape[1], dtype=float)
    vals = np.asarray(values, dtype=float)
    if vals.shape != (c.shape[1],):
        raise ValidationError(f"values has shape {vals.shape}, counts has {c.shape[1]} columns",
                              where="values")
    return vals


def _unit_coincidences(c: np.ndarray) -> sparse.csr_matrix:
    """Each unit's coincidence matrix, flattened: sparse ``(n_units, V*V)``.

    Unit u adds ``(n_uc n_uk - [c=k] n_uc) / (m_u - 1)`` to cell (c, k), m_u its number of
    values; units with m_u < 2 add nothing (Krippendorff 2011, eq. for o_ck).
    """
    n_units, v = c.shape
    m = c.sum(axis=1)
    c = np.where((m >= 2)[:, None], c, 0.0)
    rows, cols = np.nonzero(c)
    per_row = np.bincount(rows, minlength=n_units)
    start = np.cumsum(per_row) - per_row
    partners = per_row[rows]
    a = np.repeat(np.arange(rows.size), partners)
    b = start[rows[a]] + np.arange(a.size) - np.repeat(np.cumsum(partners) - partners, partners)
    unit = rows[a]
    ca, cb = c[unit, cols[a]], c[unit, cols[b]]
    val = (ca * cb - np.where(a == b, ca, 0.0)) / np.maximum(m[unit] - 1.0, 1.0)
    return sparse.csr_matrix((val, (unit, cols[a] * v + cols[b])), shape=(n_units, v * v))


def _alpha_from_coincidences(o: np.ndarray, vals: np.ndarray, level: str) -> np.ndarray:
    """Alpha for a stack of coincidence matrices ``o`` ``(n_rep, V, V)``: ``(n_rep,)``."""
    n_v = o.sum(axis=1)  # (n_rep, V)
    n = n_v.sum(axis=1)
    if level == "nominal":
        d = (1.0 - np.eye(vals.size))[None]
    elif level == "interval":
        d = ((vals[:, None] - vals[None, :]) ** 2)[None]
    else:  # ordinal: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2
        cum = np.cumsum(n_v, axis=1)
        lo_cum = cum - n_v
        # cell (c, k) sums n_g from min(c, k) to max(c, k); the wrong-way difference is <= 0
        between = np.maximum(cum[:, None, :] - lo_cum[:, :, None],
                             cum[:, :, None] - lo_cum[:, None, :])
        d = (between - (n_v[:, :, None] + n_v[:, None, :]) / 2.0) ** 2
    observed = (o * d).sum(axis=(1, 2))
    expected = ((n_v[:, :, None] * n_v[:, None, :]) * d).sum(axis=(1, 2))
    expected -= (n_v * np.diagonal(d, axis1=1, axis2=2)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.where((expected > 1e-12) & (n > 1), alpha, np.nan)


@dataclass(frozen=True)
class AgreementReport:
    """Agreement figures of one batch; every undefined figure is ``None``.

    ``n_items`` counts items with at least two votes (the only ones that say anything
    about agreement); ``n_votes`` the votes on those items. ``percent_agreement`` is the
    share of agreeing vote pairs per item, averaged over items. ``cohen_kappa`` is the
    unweighted mean of ``pairwise`` kappas (annotator pairs sharing >= 2 items).
    ``per_label`` holds nominal alpha of each label against all others.
    """

    n_items: int
    n_votes: int
    percent_agreement: float | None
    cohen_kappa: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    alpha_ci: tuple[float, float] | None
    pairwise: list[dict[str, Any]] = field(default_factory=list)
    per_label: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["alpha_ci"] = list(self.alpha_ci) if self.alpha_ci is not None else None
        return out


def batch_agreement(votes: Sequence[Sequence[tuple[Hashable, Hashable]]],
                    labels: Sequence[Hashable], n_boot: int = 500,
                    seed: int = 0) -> AgreementReport:
    """All agreement figures of a batch.

    ``votes``: one entry per item, each a list of ``(annotator, label)``; ``labels``: the
    project's label set. Items with fewer than two votes are left out. An annotator who
    votes twice on one item, or a label outside ``labels``, raises ``ValidationError``.
    """
    label_index = {lb: j for j, lb in enumerate(labels)}
    ann_index: dict[Hashable, int] = {}
    v_item, v_ann, v_lab = [], [], []
    for i, item_votes in enumerate(votes):
        if len(item_votes) < 2:
            continue
        seen: set[int] = set()
        for j, (who, what) in enumerate(item_votes):
            if what not in label_index:
                raise ValidationError(f"unknown label {what!r}", where=f"votes[{i}][{j}]")
            a = ann_index.setdefault(who, len(ann_index))
            if a in seen:
                raise ValidationError(f"annotator {who!r} voted twice", where=f"votes[{i}][{j}]")
            seen.add(a)
            v_item.append(i)
            v_ann.append(a)
            v_lab.append(label_index[what])
    _, item = np.unique(np.array(v_item, dtype=int), return_inverse=True)
    ann, lab = np.array(v_ann, dtype=int), np.array(v_lab, dtype=int)
    n_items, k = (int(item.max()) + 1 if item.size else 0), len(labels)
    counts = np.bincount(item * k + lab, minlength=n_items * k).reshape(n_items, k)
    pairwise = _pairwise_kappas(item, ann, lab, list(ann_index), k)
    kappas = [p["kappa"] for p in pairwise if p["kappa"] is not None]
    enough = n_items >= 2
    alpha = _clean(krippendorff_alpha_from_counts(counts)) if enough else None
    ci = alpha_bootstrap_ci(counts, n_boot=n_boot, seed=seed) if alpha is not None else None
    return AgreementReport(
        n_items=n_items,
        n_votes=int(lab.size),
        percent_agreement=_clean(_percent_agreement(counts)) if n_items else None,
        cohen_kappa=float(np.mean(kappas)) if kappas else None,
        fleiss_kappa=_clean(fleiss_kappa(counts)) if enough else None,
        krippendorff_alpha=alpha,
        alpha_ci=ci if ci is not None and all(np.isfinite(ci)) else None,
        pairwise=pairwise,
        per_label={str(lb): (_clean(krippendorff_alpha_from_counts(
            np.stack([counts[:, j], counts.sum(axis=1) - counts[:, j]], axis=1)))
            if enough else None) for j, lb in enumerate(labels)},
    )


def _percent_agreement(counts: np.ndarray) -> float:
    n_i = counts.sum(axis=1)
    return float(np.mean(((counts * (counts - 1)).sum(axis=1)) / (n_i * (n_i - 1))))


def _pairwise_kappas(item: np.ndarray, ann: np.ndarray, lab: np.ndarray,
                     names: list[Hashable], k: int) -> list[dict[str, Any]]:
    """Cohen's kappa of every annotator pair with >= 2 shared items, in first-seen order."""
    if item.size == 0:
        return []
    n_ann = len(names)
    who = sparse.csr_matrix((np.ones(item.size), (ann, item)), shape=(n_ann, int(item.max()) + 1))
    shared = sparse.triu(who @ who.T, k=1).tocoo()
    order = np.lexsort((item, ann))  # per annotator, items ascending (each at most once)
    bounds = np.searchsorted(ann[order], np.arange(n_ann + 1))
    items_of = [item[order[bounds[a]:bounds[a + 1]]] for a in range(n_ann)]
    labels_of = [lab[order[bounds[a]:bounds[a + 1]]] for a in range(n_ann)]
    out = []
    for a, b, n in sorted(zip(shared.row, shared.col, shared.data, strict=True)):
        if n < 2:
            continue
        _, ia, ib = np.intersect1d(items_of[a], items_of[b], assume_unique=True,
                                   return_indices=True)
        out.append({"a": names[a], "b": names[b], "n": int(n),
                    "kappa": _clean(_kappa_codes(labels_of[a][ia], labels_of[b][ib], k))})
    return out


def _clean(x: float) -> float | None:
    """``None`` for an undefined (nan/inf) figure, else a plain float."""
    return float(x) if x is not None and np.isfinite(x) else None
