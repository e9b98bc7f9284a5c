"""Turn a model's evaluation into selection targets: weak classes and confused pairs.

Pure: takes the metrics dict that ``training.metrics.evaluate_predictions`` returns and gives
per-label boosts for ``next_batch(class_boost=...)`` (the ``class-balance`` part of selection
raises the value of items predicted as those labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    kind: str  # weak-class | confusion
    labels: tuple[str, ...]
    figure: float
    message: str


def findings(metrics: dict[str, Any], *, margin: float = 0.1, top: int = 5) -> list[Finding]:
    """Classes whose F1 lies ``margin`` or more below macro-F1, and the most frequent confusions."""
    per_class = metrics.get("per_class", {})
    macro = metrics.get("macro_f1")
    out: list[Finding] = []
    if macro is not None:
        weak = sorted((v["f1"], label) for label, v in per_class.items()
                      if v["f1"] <= macro - margin)
        out += [Finding("weak-class", (label,), f1,
                        f"{label}: F1 {f1:.2f} vs macro-F1 {macro:.2f}")
                for f1, label in weak[:top]]
    for c in metrics.get("confusions", [])[:top]:
        out.append(Finding("confusion", (c["true"], c["predicted"]), float(c["count"]),
                           f"{c['true']} predicted as {c['predicted']} {c['count']} times"))
    return out


def class_boost(found: list[Finding], boost: float = 2.0) -> dict[str, float]:
    """Labels named by findings get ``boost`` (>= 1) in the next batch's selection."""
    return {label: boost for f in found for label in f.labels}
