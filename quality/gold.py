"""Score annotators on gold items (items whose true label is known) and flag who needs
recalibration.

>>> scores = gold_scorecard(["ann", "ann", "bob"], ["cat", "dog", "dog"],
...                         ["cat", "cat", "dog"], ["cat", "dog"])
>>> scores["ann"].accuracy, scores["ann"].confusion["cat"]
(0.5, {'cat': 1, 'dog': 1})
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from scipy.stats import norm

from labelloop.core.errors import ValidationError


@dataclass(frozen=True)
class AnnotatorScore:
    """One annotator's record on gold items.

    ``confusion[gold_label][given_label]`` counts answers; every label name appears in both
    levels. ``ci_low``/``ci_high``: Wilson 95% interval of ``accuracy``.
    """

    annotator: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Wilson, "Probable inference, the law of succession, and statistical inference",
    JASA 22 (1927); Brown, Cai & DasGupta, Stat. Sci. 16 (2001) recommend it for small n.
    Returns ``(0.0, 1.0)`` when ``n == 0``.
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValidationError(f"{successes} successes out of {n}", where="successes")
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence {confidence} not in (0, 1)", where="confidence")
    if n == 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def gold_scorecard(annotators: Sequence[str], labels: Sequence[Hashable],
                   gold: Sequence[Hashable],
                   label_names: Sequence[Hashable]) -> dict[str, AnnotatorScore]:
    """Accuracy, Wilson interval and confusion of each annotator on gold answers.

    ``annotators``, ``labels``, ``gold``: one entry per answer on a gold item, equal
    lengths ``(n_answers,)``; ``label_names``: the label set (a label outside it raises
    ``ValidationError``). Returns annotators in first-seen order.
    """
    if not len(annotators) == len(labels) == len(gold):
        raise ValidationError(f"lengths differ: annotators {len(annotators)}, labels "
                              f"{len(labels)}, gold {len(gold)}", where="gold")
    names = [str(lb) for lb in label_names]
    known = set(label_names)
    tallies: dict[str, dict[str, dict[str, int]]] = {}
    for row, (ann, given, truth) in enumerate(zip(annotators, labels, gold, strict=True)):
        for what, value in (("labels", given), ("gold", truth)):
            if value not in known:
                raise ValidationError(f"unknown label {value!r}", where=f"{what}[{row}]")
        conf = tallies.setdefault(str(ann), {g: dict.fromkeys(names, 0) for g in names})
        conf[str(truth)][str(given)] += 1
    scores = {}
    for ann, conf in tallies.items():
        n = sum(sum(r.values()) for r in conf.values())
        correct = sum(conf[g][g] for g in names)
        low, high = wilson_interval(correct, n)
        scores[ann] = AnnotatorScore(ann, n, correct, correct / n, low, high, conf)
    return scores


def flag_for_recalibration(scores: Mapping[str, AnnotatorScore], min_accuracy: float,
                           min_count: int = 5) -> list[str]:
    """Annotators with at least ``min_count`` gold answers and accuracy below
    ``min_accuracy``, worst first (ties by name). Fewer answers than ``min_count`` are too
    few to judge, so those annotators are never flagged.
    """
    if not 0.0 <= min_accuracy <= 1.0:
        raise ValidationError(f"min_accuracy {min_accuracy} not in [0, 1]", where="min_accuracy")
    low = [s for s in scores.values() if s.n >= min_count and s.accuracy < min_accuracy]
    return [s.annotator for s in sorted(low, key=lambda s: (s.accuracy, s.annotator))]
