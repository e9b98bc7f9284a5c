"""Which encoder a retrain's model reads: the frozen base encoder or a fine-tuned version.

Fine-tuning (``prelabel.finetune``) costs minutes where a head costs seconds, so it is not
tried at every retrain. From ``settings.finetune_min_labels`` labels, a retrain runs the
holdout check (SetFit on two thirds of the labels, both sides scored on the third it never
saw, a switch only above a standard error) and again each time the labels have grown
``GROWTH`` (2) times since the last check; between checks the last decision stands, and the
next model reads the same encoder as the live one. The check always compares a fresh tuning
of the base encoder with the frozen base encoder: an older tuned version has seen some of
the held-out third, so it could not be scored fairly against them.

The decision and its figures go to the model's metrics (``finetune``), from which the next
retrain reads when the last check ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.prelabel.encoders import resolve_model_path
from labelloop.prelabel.finetune import check_due, holdout_check
from labelloop.store.models import ModelVersion


@dataclass
class EncoderPlan:
    """The encoder the next model reads, and the state it passes on (``metrics.finetune``)."""

    key: str
    state: dict[str, Any] = field(default_factory=dict)
    made: bool = False  # a tuned encoder this retrain wrote (its pool vectors are not cached)


def standing(settings: Settings, live: ModelVersion | None, base_key: str) -> EncoderPlan:
    """Without a check: the live model's encoder if it is a tuned version that is still on
    disk (and fine-tuning is on), else the base encoder; the last check's state carries on."""
    state = dict(((live.metrics or {}).get("finetune") or {}) if live is not None else {})
    key = live.encoder if (settings.finetune == "auto" and live is not None
                           and tuned.is_tuned(live.encoder)
                           and tuned.exists(settings, live.encoder)) else base_key
    return EncoderPlan(key, state | {"encoder": key, "checked": False} if state else {})


def due(settings: Settings, plan: EncoderPlan, n_labels: int) -> bool:
    """A check runs from ``finetune_min_labels`` labels, then whenever they have doubled
    (``prelabel.finetune.check_due``)."""
    return settings.finetune == "auto" and check_due(
        n_labels, plan.state.get("checked_at"), settings.finetune_min_labels)


def check(settings: Settings, project_id: int, base_key: str, texts: Sequence[str],
          y: Sequence[Any], *, frozen_predict: Callable[[np.ndarray, np.ndarray], Any],
          c: float, seed: int, uniform: np.ndarray,
          progress: Callable[[int], None] | None = None) -> EncoderPlan:
    """Run the holdout check; keep the tuned encoder (a new key under ``<home>/encoders``)
    where it wins, else delete it and stay on ``base_key``."""
    key = tuned.new_key(project_id)
    result = holdout_check(texts, y, base=resolve_model_path(settings.encoder),
                           frozen_predict=frozen_predict, c=c, seed=seed, uniform=uniform,
                           max_steps=settings.finetune_steps, out=tuned.folder(settings, key),
                           progress=progress)
    if not result.fine_tune:
        tuned.remove(settings, key)
    chosen = key if result.fine_tune else base_key
    return EncoderPlan(chosen, {"checked": True, "checked_at": len(y), "encoder": chosen,
                                "steps": settings.finetune_steps, **result.to_json()},
                       made=result.fine_tune)
