"""Route each candidate item: to humans (and how many), or to auto-accept, with a reason.

Rules, in order (the first that applies wins):
1. safety-critical: the predicted label is critical, or any critical label is plausible
   (probability >= ``critical_plausibility``) -> humans, ``critical_overlap`` annotators.
   Critical items are never auto-accepted, whatever the confidence.
2. low-confidence: the top probability is below the threshold for the predicted class
   -> humans, ``overlap`` annotators.
3. otherwise an auto-accept candidate; a random ``audit_share`` of candidates still goes to
   humans (reason ``audit``, at least two annotators) so the auto-accepted labels' real
   accuracy is measured.

Besides, ``n_calibration`` items drawn uniformly from the non-critical pool go to humans
(reason ``calibration``): an unbiased sample on which the next model's confidence is
calibrated (uncertainty-picked items are harder than the pool, see
``selection.auto_accept.estimated_thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.selection.auto_accept import Thresholds, auto_accept_mask, critical_mask

SAFETY_CRITICAL = "safety-critical"
LOW_CONFIDENCE = "low-confidence"
AUDIT = "audit"
AUTO_ACCEPT = "auto-accept"
CALIBRATION = "calibration"


@dataclass(frozen=True)
class RoutingPolicy:
    thresholds: Thresholds | None  # None: auto-accept is off (e.g. a zero-shot pre-labeler)
    critical: np.ndarray  # (n_critical,) int label indices
    critical_plausibility: float = 0.2
    audit_share: float = 0.05
    overlap: int = 1
    critical_overlap: int = 2


@dataclass(frozen=True)
class Routes:
    reason: np.ndarray  # (n,) str: one of the five reasons above
    required: np.ndarray  # (n,) int: annotators needed (0 for auto-accept)

    @property
    def human(self) -> np.ndarray:
        return self.reason != AUTO_ACCEPT


def route(probs: np.ndarray, policy: RoutingPolicy, rng: np.random.Generator,
          n_calibration: int = 0) -> Routes:
    """probs: (n, n_labels) -> a reason and a head-count per item."""
    n = probs.shape[0]
    critical = critical_mask(probs, policy.critical, policy.critical_plausibility)
    candidate = np.zeros(n, dtype=bool)
    if policy.thresholds is not None:
        candidate = auto_accept_mask(probs, policy.thresholds, policy.critical,
                                     policy.critical_plausibility)
    reason = np.where(critical, SAFETY_CRITICAL, LOW_CONFIDENCE).astype(object)
    reason[candidate] = AUTO_ACCEPT
    cand_idx = np.flatnonzero(candidate)
    if cand_idx.size and policy.audit_share > 0:
        n_audit = max(1, int(round(policy.audit_share * cand_idx.size)))
        reason[rng.choice(cand_idx, size=min(n_audit, cand_idx.size), replace=False)] = AUDIT
    free = np.flatnonzero((reason == LOW_CONFIDENCE) | (reason == AUTO_ACCEPT))
    if n_calibration > 0 and free.size:
        reason[rng.choice(free, size=min(n_calibration, free.size), replace=False)] = CALIBRATION
    required = np.where(critical, policy.critical_overlap, policy.overlap)
    # An audit measures the model, so one annotator's own error rate must not swamp it:
    # audits get at least two people, like critical items.
    required[reason == AUDIT] = max(policy.overlap, 2)
    required[reason == AUTO_ACCEPT] = 0
    return Routes(reason=reason, required=required)
