"""Auto-accept thresholds in the loop: calibrated per model, tightened by audits.

Thresholds live with the model version that produced the confidences
(``ModelVersion.metrics["auto_accept"]``): calibration happens when a model is trained (on
out-of-fold predictions for human-labeled items, see ``training.service``) and every audit of
that model's auto-accepted labels may tighten them (``selection.auto_accept.tighten``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from labelloop.selection.auto_accept import (
    NEVER,
    Thresholds,
    calibrate_thresholds,
    pool_estimate,
    tighten,
)
from labelloop.store.models import ModelVersion, Project


def thresholds_to_json(t: Thresholds, labels: list[str], n: int) -> dict[str, Any]:
    return {"global": t.global_threshold, "per_class": {labels[c]: v for c, v in
                                                         t.per_class.items()},
            "target": t.target, "confidence_level": t.confidence_level, "method": t.method,
            "temperature": t.temperature, "n_calibration": n, "audits": []}


def thresholds_from_json(data: dict[str, Any], labels: list[str]) -> Thresholds:
    index = {lb: i for i, lb in enumerate(labels)}
    return Thresholds(global_threshold=float(data["global"]),
                      per_class={index[lb]: float(v) for lb, v in data["per_class"].items()
                                 if lb in index},
                      target=float(data["target"]),
                      confidence_level=float(data["confidence_level"]),
                      method=str(data.get("method", "clopper-pearson")),
                      temperature=float(data.get("temperature", 1.0)))


def calibrate_for_model(probs: np.ndarray, y: np.ndarray, project: Project) -> dict[str, Any]:
    """probs: (n, n_labels) out-of-fold probabilities of human-labeled items; y: (n,) int."""
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    t = calibrate_thresholds(conf, pred, pred == y, target=project.target_accuracy)
    return thresholds_to_json(t, list(project.labels), len(y))


def estimate_for_model(pool_probs: np.ndarray, cal_probs: np.ndarray, cal_y: np.ndarray,
                       project: Project) -> dict[str, Any]:
    """``selection.auto_accept.pool_estimate`` with the project's target and critical labels,
    as the JSON stored on the model version."""
    index = {lb: i for i, lb in enumerate(project.labels)}
    critical = np.array([index[c] for c in project.critical_labels], dtype=int)
    t, check = pool_estimate(pool_probs, cal_probs, cal_y, critical, project.target_accuracy,
                             project.critical_plausibility)
    return {**thresholds_to_json(t, list(project.labels), len(cal_y)), **check}


def model_thresholds(model: ModelVersion, project: Project) -> Thresholds | None:
    """The model's current thresholds, or None when it has none (zero-shot: never auto)."""
    data = (model.metrics or {}).get("auto_accept")
    if not data:
        return None
    return thresholds_from_json(data, list(project.labels))


def record_audit(session: Session, project: Project, model: ModelVersion | None, correct: int,
                 n: int, batch_id: int) -> dict[str, Any] | None:
    """Store an audit of ``model``'s auto-accepted labels and tighten its thresholds if the
    audit shows the target is missed. Returns the new thresholds' JSON (or None)."""
    if model is None or n == 0:
        return None
    data = dict((model.metrics or {}).get("auto_accept") or {})
    if not data:
        return None
    before = thresholds_from_json(data, list(project.labels))
    after = tighten(before, correct, n, project.target_accuracy)
    new = {**data, **thresholds_to_json(after, list(project.labels),
                                        data.get("n_calibration", 0))}
    new["audits"] = [*data.get("audits", []), {
        "batch_id": batch_id, "correct": correct, "n": n,
        "tightened": after != before, "stopped": after.global_threshold >= NEVER}]
    model.metrics = {**model.metrics, "auto_accept": new}  # reassign: JSON change tracking
    session.flush()
    return new
