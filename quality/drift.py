"""Drift: did agreement or gold accuracy fall in the latest batches, and why?

Input is one record per vote::

    {"batch": 3, "annotator": "ann_07", "label": "B-ORG", "guideline_version": "v2",
     "correct": True,                   # vs the gold label; None on non-gold items
     "agrees_with_consensus": False}    # vs the aggregated label; None if not overlapped

Two figures are compared between a baseline window and the current batches:
``agreement`` (share of ``agrees_with_consensus``) and ``gold_accuracy`` (share of
``correct``). A fall larger than ``margin`` gives a :class:`Finding` whose causes are
ranked by their contribution to the fall, ``share of current votes x group's own fall``:

- annotators: each annotator against their own baseline; a new annotator (fewer than
  ``MIN_GROUP`` baseline votes) against the overall baseline, marked ``(new)``;
- labels: each label against its baseline, measured on returning annotators only, so
  that a weaker new cohort is not blamed on every label;
- guideline: named whenever the current batches use a guideline version the baseline
  did not, with the returning annotators' figure on the new version.

An annotator or label is named only if, on at least ``MIN_GROUP`` votes, its own fall
exceeds ``margin`` and ``Z_NAMED`` standard errors of a difference of two proportions
(so a veteran with 12 gold answers is not blamed for one slip). The figure itself is
judged on the fixed ``margin`` once both windows hold ``min_count`` votes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labelloop.core.errors import ValidationError

MIN_GROUP = 5  # fewest votes on which an annotator, label or version is judged
Z_NAMED = 2.0  # a group's fall must be this many standard errors to be named
METRICS = {"agreement": "agrees_with_consensus", "gold_accuracy": "correct"}


@dataclass(frozen=True)
class Finding:
    """One figure that fell: baseline and current value, ``drop = baseline - current``,
    causes most likely first, and a one-line message for people."""

    metric: str
    baseline: float
    current: float
    drop: float
    causes: list[str] = field(default_factory=list)
    message: str = ""
    n_baseline: int = 0
    n_current: int = 0


@dataclass(frozen=True)
class _Vote:
    annotator: Hashable
    label: Hashable
    version: Hashable
    ok: bool


def detect_drift(records: Iterable[Mapping[str, Any]], baseline_batches: Sequence[Hashable],
                 margin: float = 0.05, min_count: int = 20, *,
                 current_batches: Sequence[Hashable] | None = None) -> list[Finding]:
    """Findings for each figure that fell by more than ``margin``.

    ``current_batches`` defaults to every batch after the last baseline batch. A figure
    with fewer than ``min_count`` votes in the baseline or the current window is not
    judged. Returns ``[]`` when nothing fell (or there is no current batch).
    """
    rows = _check_records(records)
    baseline = set(baseline_batches)
    if not baseline:
        raise ValidationError("baseline_batches is empty", where="baseline_batches")
    if current_batches is None:
        try:
            last: Any = max(baseline)  # type: ignore[type-var]  # TypeError caught below
            current = {r["batch"] for r in rows if r["batch"] > last}
        except TypeError as err:
            raise ValidationError(f"batches cannot be ordered: {err}",
                                  where="baseline_batches") from err
    else:
        current = set(current_batches)
    if baseline & current:
        raise ValidationError(f"batches {sorted(map(str, baseline & current))} are in both "
                              "windows", where="current_batches")
    findings = []
    for metric, key in METRICS.items():
        base = [_vote(r, key) for r in rows if r["batch"] in baseline and r.get(key) is not None]
        cur = [_vote(r, key) for r in rows if r["batch"] in current and r.get(key) is not None]
        if len(base) < min_count or len(cur) < min_count:
            continue
        finding = _judge(metric, base, cur, margin)
        if finding is not None:
            findings.append(finding)
    return findings


def _judge(metric: str, base: list[_Vote], cur: list[_Vote], margin: float) -> Finding | None:
    b_rate, c_rate = _rate(base), _rate(cur)
    drop = b_rate - c_rate
    if drop <= margin:
        return None
    ranked = sorted(_annotator_causes(metric, base, cur, b_rate, margin)
                    + _label_causes(metric, base, cur, margin)
                    + _guideline_causes(metric, base, cur), key=lambda c: -c[0])
    causes = [f"{text}; accounts for {share:.3f} of the drop" for share, _, text in ranked]
    message = (f"{metric} fell from {b_rate:.2f} to {c_rate:.2f} (drop {drop:.2f} > margin "
               f"{margin:.2f}, {len(cur)} current votes)")
    if ranked:
        message += "; likely causes: " + ", ".join(short for _, short, _ in ranked[:3])
    return Finding(metric, b_rate, c_rate, drop, causes, message, len(base), len(cur))


def _annotator_causes(metric: str, base: list[_Vote], cur: list[_Vote], b_rate: float,
                      margin: float) -> list[tuple[float, str, str]]:
    before = _by(base, "annotator")
    out = []
    for name, (n, rate) in _by(cur, "annotator").items():
        n_before, r_before = before.get(name, (0, b_rate))
        new = n_before < MIN_GROUP
        ref, n_ref = (b_rate, len(base)) if new else (r_before, n_before)
        if n >= MIN_GROUP and _fell(ref, n_ref, rate, n, margin):
            share = n / len(cur)
            out.append((share * (ref - rate), f"annotator {name}",
                        f"annotator {name}{' (new)' if new else ''}: {metric} {rate:.2f} vs "
                        f"baseline {ref:.2f} on {n} votes ({share:.0%} of current)"))
    return out


def _label_causes(metric: str, base: list[_Vote], cur: list[_Vote],
                  margin: float) -> list[tuple[float, str, str]]:
    base_r, cur_r = _returning(base, cur)
    before = _by(base_r, "label")
    out = []
    for name, (n, rate) in _by(cur_r, "label").items():
        n_before, r_before = before.get(name, (0, 0.0))
        if n >= MIN_GROUP and n_before >= MIN_GROUP and _fell(r_before, n_before, rate, n,
                                                               margin):
            share = n / len(cur_r)
            out.append((share * (r_before - rate), f"label {name}",
                        f"label {name}: {metric} {rate:.2f} vs baseline {r_before:.2f} "
                        f"({share:.0%} of current votes, returning annotators)"))
    return out


def _guideline_causes(metric: str, base: list[_Vote],
                      cur: list[_Vote]) -> list[tuple[float, str, str]]:
    old = {v.version for v in base}
    new = sorted({v.version for v in cur} - old, key=str)
    if not new:
        return []
    base_r, cur_r = _returning(base, cur)
    on_new = [v for v in cur_r if v.version in new]
    share = len([v for v in cur if v.version in new]) / len(cur)
    olds, news = ", ".join(sorted(map(str, old))), ", ".join(map(str, new))
    short = f"guideline {olds} -> {news}"
    text = f"guideline_version changed: {olds} -> {news} ({share:.0%} of current votes"
    if len(on_new) < MIN_GROUP or not base_r:
        return [(0.0, short, text + ")")]
    ref, rate = _rate(base_r), _rate(on_new)
    return [(share * (ref - rate), short, text + f"; returning annotators' {metric} {rate:.2f} on "
             f"{news} vs {ref:.2f} before)")]


def _fell(ref: float, n_ref: int, rate: float, n: int, margin: float) -> bool:
    """Fell by more than ``margin`` and ``Z_NAMED`` standard errors (pooled two-proportion
    z-test: the standard error under "no change")."""
    pooled = (ref * n_ref + rate * n) / (n_ref + n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n))
    return ref - rate > max(margin, Z_NAMED * se)


def _returning(base: list[_Vote], cur: list[_Vote]) -> tuple[list[_Vote], list[_Vote]]:
    """Votes of annotators judged in both windows; all votes if too few such votes."""
    before, now = _by(base, "annotator"), _by(cur, "annotator")
    keep = {a for a in now if before.get(a, (0, 0))[0] >= MIN_GROUP}
    base_r = [v for v in base if v.annotator in keep]
    cur_r = [v for v in cur if v.annotator in keep]
    return (base_r, cur_r) if len(cur_r) >= MIN_GROUP else (base, cur)


def _by(votes: list[_Vote], attr: str) -> dict[Hashable, tuple[int, float]]:
    """Votes and rate per value of ``attr``."""
    tally: dict[Hashable, list[int]] = {}
    for v in votes:
        t = tally.setdefault(getattr(v, attr), [0, 0])
        t[0] += 1
        t[1] += v.ok
    return {k: (n, ok / n) for k, (n, ok) in tally.items()}


def _rate(votes: list[_Vote]) -> float:
    return sum(v.ok for v in votes) / len(votes)


def _vote(record: Mapping[str, Any], key: str) -> _Vote:
    return _Vote(record["annotator"], record["label"], record.get("guideline_version"),
                 bool(record[key]))


def _check_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = list(records)
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise ValidationError(f"record is {type(r).__name__}, not a mapping",
                                  where=f"records[{i}]")
        for key in ("batch", "annotator", "label"):
            if r.get(key) is None:
                raise ValidationError(f"{key} is missing", where=f"records[{i}].{key}")
        for key in METRICS.values():
            if r.get(key) not in (None, True, False):
                raise ValidationError(f"{key} must be true, false or null, got {r[key]!r}",
                                      where=f"records[{i}].{key}")
    return rows
