"""Evaluation findings, pure: what fell, what is confused more, which slices of the training
data disagree with everything else, and whether a finding has recovered.

Every test here adapts to the data at hand: a drop or a rise counts when it exceeds both a
floor and ``z`` standard errors of the figures it compares (small classes need bigger
changes), and a slice counts when a one-sided Fisher exact test against the rest of the rows
passes after a Bonferroni correction over every slice tested.

>>> before = {"per_class": {"a": {"f1": 0.9, "support": 50}, "b": {"f1": 0.8, "support": 50}}}
>>> after = {"per_class": {"a": {"f1": 0.4, "support": 50}, "b": {"f1": 0.78, "support": 50}}}
>>> [f.labels for f in f1_drops(after, before)]
[('a',)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import fisher_exact

MIN_DROP = 0.05  # an F1 change smaller than this is never a finding, however large the set
Z = 2.0  # standard errors a change must exceed
MIN_SLICE = 10  # rows a slice needs before it is tested
MIN_LIFT = 0.05  # a slice's error rate must exceed the rest's by this much too
ALPHA = 0.01  # family-wise error rate over all slices tested


@dataclass(frozen=True)
class Finding:
    """One thing an evaluation found. ``figure``: its size (an F1 drop, a confusion count, a
    slice's error rate, a suspect count); ``baseline``: the figure to recover to."""

    kind: str  # f1-drop | confusion | slice | label-errors
    labels: tuple[str, ...]
    figure: float
    message: str
    baseline: float | None = None
    slice: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        """What makes two findings the same finding (for not raising it twice): suspected
        label errors are one finding whichever classes they fall in."""
        if self.kind == "label-errors":
            return (self.kind,)
        return (self.kind, self.labels, tuple(sorted(self.slice.items())))


def _f1_se(f1: float, support: int) -> float:
    return math.sqrt(max(f1 * (1 - f1), 1e-4) / max(support, 1))


def _drop_floor(f_before: float, f_now: float, n_before: int, n_now: int, z: float,
                min_drop: float) -> float:
    return max(min_drop, z * math.hypot(_f1_se(f_before, n_before), _f1_se(f_now, n_now)))


def f1_drops(current: dict[str, Any], previous: dict[str, Any], *, z: float = Z,
             min_drop: float = MIN_DROP) -> list[Finding]:
    """Classes whose F1 fell from ``previous`` to ``current`` (two models' evaluation
    figures, ``training.metrics.evaluate_predictions``) by more than the larger of
    ``min_drop`` and ``z`` standard errors (each F1 read as a proportion of its support).
    Largest drop first; ``baseline`` is the F1 before."""
    now, before = current.get("per_class", {}), previous.get("per_class", {})
    out = []
    for label in sorted(now.keys() & before.keys()):
        f_now, f_before = float(now[label]["f1"]), float(before[label]["f1"])
        floor = _drop_floor(f_before, f_now, int(before[label].get("support", 0)),
                            int(now[label].get("support", 0)), z, min_drop)
        if f_before - f_now > floor:
            out.append(Finding("f1-drop", (label,), round(f_before - f_now, 4),
                               f"F1 of {label!r} fell from {f_before:.2f} to {f_now:.2f}",
                               baseline=f_before))
    return sorted(out, key=lambda f: -f.figure)


def f1_recovered(metrics: dict[str, Any], label: str, baseline: float, *, z: float = Z,
                 min_drop: float = MIN_DROP) -> bool:
    """The class's F1 in ``metrics`` is no longer a significant drop from ``baseline``."""
    figs = metrics.get("per_class", {}).get(label)
    if figs is None:
        return False
    f_now, n = float(figs["f1"]), int(figs.get("support", 0))
    return baseline - f_now <= _drop_floor(baseline, f_now, n, n, z, min_drop)


def _pairs(metrics: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Every confused pair's count (``confusion_pairs``), or the top ones only (figures of a
    model evaluated before every pair was kept)."""
    if "confusion_pairs" in metrics:
        return {(t, p): int(c) for t, p, c in metrics["confusion_pairs"]}
    return {(c["true"], c["predicted"]): int(c["count"]) for c in metrics.get("confusions", [])}


def _unlisted(metrics: dict[str, Any]) -> int:
    """The most a pair missing from ``metrics``' confusions can have been confused: 0 when
    every pair is kept, else the smallest count of a full top list."""
    if "confusion_pairs" in metrics:
        return 0
    listed = metrics.get("confusions", [])
    return min((int(c["count"]) for c in listed), default=0) if len(listed) >= 10 else 0


def _rise_floor(before: float, now: float, z: float) -> float:
    return z * math.sqrt(max(before + now, 1.0))  # a difference of two Poisson counts


def confusion_rises(current: dict[str, Any], previous: dict[str, Any], *, z: float = Z,
                    min_count: int = 3) -> list[Finding]:
    """Pairs (true, predicted) confused more often than under ``previous``: at least
    ``min_count`` times now and more than ``z`` Poisson standard errors up."""
    before, unlisted = _pairs(previous), _unlisted(previous)
    out = []
    for (t, p), n in _pairs(current).items():
        b = before.get((t, p), unlisted)
        if n >= min_count and n - b > _rise_floor(b, n, z):
            out.append(Finding("confusion", (t, p), float(n),
                               f"{t!r} predicted as {p!r} {n} times (was {b})",
                               baseline=float(b)))
    return sorted(out, key=lambda f: -f.figure)


def confusion_recovered(metrics: dict[str, Any], pair: tuple[str, ...], baseline: float,
                        *, z: float = Z) -> bool:
    """The pair's count in ``metrics`` is no longer a significant rise over ``baseline``
    (a pair no longer among the listed confusions counts as 0)."""
    n = _pairs(metrics).get((pair[0], pair[1]), 0)
    return n - baseline <= _rise_floor(baseline, n, z)


def slice_findings(slices: dict[str, Sequence[Sequence[Hashable]]],
                   predicted: dict[str, Sequence[str]], labels: Sequence[str], *,
                   alpha: float = ALPHA, min_n: int = MIN_SLICE,
                   min_lift: float = MIN_LIFT) -> list[Finding]:
    """Slices of rows whose error rate stands out.

    ``slices[attribute][i]``: the values of ``attribute`` row ``i`` belongs to (a row
    answered by two annotators is in both their slices); ``predicted[attribute][i]``: the
    answer for row ``i`` of a model that saw none of row ``i``'s slices of that attribute;
    ``labels``: each row's label. A row is wrong where the two differ. A slice with at least
    ``min_n`` rows is a finding when its rate exceeds the rest's by ``min_lift`` and a
    one-sided Fisher exact test, Bonferroni-corrected over every slice tested, gives
    p < ``alpha``. Each names its most frequent (label, predicted) pairs. Highest rate first.
    """
    y = np.asarray(labels, dtype=object)
    n_total = y.size
    tested: list[tuple[str, Hashable, np.ndarray]] = []
    for attribute, values in slices.items():
        members: dict[Hashable, list[int]] = {}
        for i, vs in enumerate(values):
            for v in vs:
                members.setdefault(v, []).append(i)
        if len(members) < 2:
            continue  # one value: nothing to compare it with
        tested += [(attribute, v, np.asarray(rows)) for v, rows in members.items()
                   if min_n <= len(rows) < n_total]
    wrong = {a: np.asarray(predicted[a], dtype=object) != y for a in slices}
    out = []
    for attribute, value, rows in tested:
        k_total = int(wrong[attribute].sum())
        n, k = rows.size, int(wrong[attribute][rows].sum())
        rest_n, rest_k = n_total - n, k_total - k
        rate, rest = k / n, rest_k / rest_n
        if rate - rest < min_lift:
            continue
        _, p = fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="greater")
        p = min(1.0, float(p) * len(tested))
        if p >= alpha:
            continue
        bad = rows[wrong[attribute][rows]]
        pairs = Counter((labels[i], predicted[attribute][i]) for i in bad).most_common(3)
        involved = tuple(dict.fromkeys(lb for pair, _ in pairs for lb in pair))
        out.append(Finding(
            "slice", involved, round(rate, 4),
            f"{attribute} {value}: {k} of {n} labels disagree with a model that did not see "
            f"them ({rate:.0%}, against {rest:.0%} elsewhere); most often "
            + ", ".join(f"{a!r} where the model says {b!r} ({c})" for (a, b), c in pairs),
            baseline=round(rest, 4), slice={"attribute": attribute, "value": value},
            evidence={"n_rows": n, "n_wrong": k, "p_value": p, "rows": bad.tolist(),
                      "pairs": [{"label": a, "predicted": b, "count": c}
                                for (a, b), c in pairs]}))
    return sorted(out, key=lambda f: -f.figure)


def class_boost(found: Sequence[Finding], boost: float = 2.0) -> dict[str, float]:
    """Labels named by ``found`` get ``boost`` (>= 1) in the next batch's selection."""
    return {label: boost for f in found for label in f.labels}
