"""Quality gate: the bars a batch must clear before it may feed a dataset version.

Figures are read by name from the batch's figures dict, first at its top level, then
under ``figures["agreement"]`` (where the batch service keeps
``AgreementReport.to_dict()``):

    bar                 figure               fails when
    min_alpha           krippendorff_alpha   value < bar
    min_kappa           cohen_kappa          value < bar
    min_gold_accuracy   gold_accuracy        value < bar
    max_error_rate      label_error_rate     value > bar

Missing figures. A figure that is absent or ``None`` (undefined, e.g. alpha when every
vote had the same label, or gold accuracy in a batch without gold items) does not fail
its bar: there is no evidence against the batch. Name the figure in ``required`` to
make its absence a failure ("gold_accuracy missing (required)").

Overlap. Agreement measured on very few shared items is noise, not evidence: when the
``n_items`` figure (items with >= 2 votes) is below ``min_overlap_items``, alpha and
kappa count as missing, so they fail only if required ("krippendorff_alpha missing
(required; n_items 1 < 2)"). A project whose batches overlap only on critical items thus
passes batches without overlap unless it asks for agreement explicitly.

>>> gate = QualityGate(min_alpha=0.6)
>>> evaluate_gate({"krippendorff_alpha": 0.41, "n_items": 30}, gate).reasons
['krippendorff_alpha 0.41 < 0.60']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labelloop.core.errors import ValidationError

# bar field -> (figure name, comparison that fails)
_BARS = {
    "min_alpha": ("krippendorff_alpha", "<"),
    "min_kappa": ("cohen_kappa", "<"),
    "min_gold_accuracy": ("gold_accuracy", "<"),
    "max_error_rate": ("label_error_rate", ">"),
}
AGREEMENT_FIGURES = ("krippendorff_alpha", "cohen_kappa")
FIGURES = (*(name for name, _ in _BARS.values()), "n_items")


@dataclass(frozen=True)
class QualityGate:
    """Bars for one project; ``None`` switches a bar off. ``required``: figure names
    (from ``FIGURES``) whose absence fails the gate."""

    min_alpha: float | None = None
    min_kappa: float | None = None
    min_gold_accuracy: float | None = None
    max_error_rate: float | None = None
    min_overlap_items: int = 2
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, low in (("min_alpha", -1.0), ("min_kappa", -1.0),
                          ("min_gold_accuracy", 0.0), ("max_error_rate", 0.0)):
            bar = getattr(self, name)
            if bar is not None and not (isinstance(bar, numbers.Real) and low <= float(bar) <= 1):
                raise ValidationError(f"{name}={bar!r} not in [{low}, 1]", where=name)
        if self.min_overlap_items < 0:
            raise ValidationError(f"min_overlap_items={self.min_overlap_items} < 0",
                                  where="min_overlap_items")
        unknown = [r for r in self.required if r not in FIGURES]
        if unknown:
            raise ValidationError(f"unknown required figures {unknown}; use {FIGURES}",
                                  where="required")


@dataclass(frozen=True)
class GateDecision:
    """``passed`` is True when ``reasons`` is empty; ``figures`` are the values checked."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons),
                "figures": dict(self.figures)}


def evaluate_gate(figures: Mapping[str, Any], gate: QualityGate) -> GateDecision:
    """Check ``figures`` against ``gate``. Reasons: missing required figures first, then
    one per failed bar in table order, naming figure, value and bar
    (``"cohen_kappa 0.12 < 0.40"``). ``figures`` of the decision: the values looked up."""
    checks = {bar: _BARS[bar] for bar in _BARS if getattr(gate, bar) is not None}
    names = {name for name, _ in checks.values()} | set(gate.required) | {"n_items"}
    seen = {name: _lookup(figures, name) for name in sorted(names)}
    overlap = seen["n_items"]
    thin = overlap is not None and overlap < gate.min_overlap_items
    why = f"; n_items {overlap} < {gate.min_overlap_items}" if thin else ""
    judged = {name: None if thin and name in AGREEMENT_FIGURES else value
              for name, value in seen.items()}
    reasons = [f"{name} missing (required{why if name in AGREEMENT_FIGURES else ''})"
               for name in gate.required if judged[name] is None]
    for bar, (name, fails_when) in checks.items():
        value, limit = judged[name], getattr(gate, bar)
        if value is None:
            continue
        if (value < limit) if fails_when == "<" else (value > limit):
            reasons.append(f"{name} {_fmt(value)} {fails_when} {_fmt(limit)}")
    return GateDecision(passed=not reasons, reasons=reasons, figures=seen)


def _lookup(figures: Mapping[str, Any], name: str) -> float | None:
    value = figures.get(name)
    if value is None and isinstance(figures.get("agreement"), Mapping):
        value = figures["agreement"].get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(f"figure {name} is {value!r}, not a number", where=name)
    if isinstance(value, numbers.Integral):
        return int(value)
    return None if math.isnan(value) else float(value)  # nan: undefined, like None


def _fmt(x: float) -> str:
    return str(x) if isinstance(x, numbers.Integral) else f"{x:.2f}"
