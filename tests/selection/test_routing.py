"""Routing: reasons, head-counts, audit share; critical items never auto-accepted."""

from __future__ import annotations

import numpy as np

from labelloop.selection.auto_accept import Thresholds
from labelloop.selection.routing import (
    AUDIT,
    AUTO_ACCEPT,
    CALIBRATION,
    LOW_CONFIDENCE,
    SAFETY_CRITICAL,
    RoutingPolicy,
    route,
)


def policy(**kw) -> RoutingPolicy:
    base = dict(thresholds=Thresholds(global_threshold=0.9), critical=np.array([2]),
                critical_plausibility=0.2, audit_share=0.0, overlap=1, critical_overlap=2)
    return RoutingPolicy(**(base | kw))


def test_reasons_and_head_counts():
    probs = np.array([[0.95, 0.04, 0.01],   # confident, not critical -> auto
                      [0.60, 0.39, 0.01],   # unsure -> human
                      [0.01, 0.01, 0.98],   # predicted critical -> 2 humans
                      [0.75, 0.00, 0.25]])  # critical plausible -> 2 humans
    r = route(probs, policy(), np.random.default_rng(0))
    assert list(r.reason) == [AUTO_ACCEPT, LOW_CONFIDENCE, SAFETY_CRITICAL, SAFETY_CRITICAL]
    assert list(r.required) == [0, 1, 2, 2]


def test_no_thresholds_means_no_auto_accept():
    probs = np.array([[0.999, 0.0005, 0.0005]])
    assert route(probs, policy(thresholds=None), np.random.default_rng(0)).reason[0] == \
        LOW_CONFIDENCE


def test_audit_share_and_critical_never_auto_accepted():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(3, 0.05), size=5000)
    r = route(probs, policy(audit_share=0.1), np.random.default_rng(1))
    critical = (probs.argmax(1) == 2) | (probs[:, 2] >= 0.2)
    assert not np.any(critical & np.isin(r.reason, [AUTO_ACCEPT, AUDIT]))
    n_auto, n_audit = (r.reason == AUTO_ACCEPT).sum(), (r.reason == AUDIT).sum()
    assert n_auto > 1000
    assert abs(n_audit / (n_auto + n_audit) - 0.1) < 0.005
    again = route(probs, policy(audit_share=0.1), np.random.default_rng(1))
    assert np.array_equal(again.reason, r.reason)  # seeded: reproducible


def test_calibration_sample_is_uniform_over_the_non_critical_pool():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(3, 0.05), size=5000)
    r = route(probs, policy(audit_share=0.05), np.random.default_rng(1), n_calibration=300)
    cal = r.reason == CALIBRATION
    critical = (probs.argmax(1) == 2) | (probs[:, 2] >= 0.2)
    assert cal.sum() == 300 and not np.any(cal & critical)
    assert r.required[cal].tolist() == [1] * 300
    # uniform: confident and unsure items in the proportion the non-critical pool has them
    confident = probs.max(1) >= 0.9
    share_pool = confident[~critical].mean()
    assert abs(confident[cal].mean() - share_pool) < 0.08
