"""Auto-accept: calibrated thresholds keep their promise, audits tighten, critical stays human."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.errors import ValidationError
from selection.auto_accept import (
    NEVER,
    Thresholds,
    audit_interval,
    auto_accept_mask,
    calibrate_thresholds,
    tighten,
)


def _calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidences skewed towards 1 and correctness drawn with exactly that probability."""
    conf = np.clip(1.0 - rng.beta(0.5, 8.0, n), 0.3, 1.0)
    return conf, rng.uniform(size=n) < conf


def test_audit_interval_is_clopper_pearson() -> None:
    low, high = audit_interval(98, 100)
    assert (round(low, 4), round(high, 4)) == (0.9296, 0.9976)  # exact binomial limits
    assert audit_interval(0, 0) == (0.0, 1.0)
    assert audit_interval(10, 10)[1] == 1.0 and audit_interval(0, 10)[0] == 0.0
    with pytest.raises(ValidationError):
        audit_interval(11, 10)


@pytest.mark.parametrize("seed", range(5))
def test_calibrated_threshold_meets_target_on_fresh_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    conf, ok = _calibrated(rng, 4000)
    thresholds = calibrate_thresholds(conf, rng.integers(0, 4, 4000), ok, target=0.98)
    assert thresholds.method == "clopper-pearson"
    assert 0.5 < thresholds.global_threshold < 1.0
    fresh_conf, fresh_ok = _calibrated(rng, 200_000)
    accepted = fresh_conf >= thresholds.global_threshold
    assert accepted.mean() > 0.3  # it does accept a useful share...
    assert fresh_ok[accepted].mean() >= 0.98  # ...and keeps the promise


def test_impossible_target_means_never_and_bad_classes_are_held_back() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 2000)
    assert calibrate_thresholds(conf, np.zeros(2000, int), rng.uniform(size=2000) < 0.7,
                                target=0.98).global_threshold == NEVER
    good_conf, good_ok = _calibrated(rng, 3000)
    bad_conf = rng.uniform(0.95, 1.0, 500)
    bad_ok = rng.uniform(size=500) < 0.9  # class 1 is wrong 10% of the time, however sure
    thresholds = calibrate_thresholds(np.r_[good_conf, bad_conf],
                                      np.r_[np.zeros(3000, int), np.ones(500, int)],
                                      np.r_[good_ok, bad_ok], target=0.98)
    assert thresholds.per_class[1] == NEVER
    assert thresholds.per_class[0] < 1.0
    assert thresholds.for_classes(np.array([0, 1, 5])).tolist() == [
        thresholds.per_class[0], NEVER, thresholds.global_threshold]


def test_tighten_rule() -> None:
    t = Thresholds(global_threshold=0.9, per_class={2: 0.8}, target=0.98)
    assert tighten(t, 99, 100) == t  # meets the target: unchanged
    mild = tighten(t, 97, 100)  # point 0.97 < 0.98 <= upper bound: halfway to 1
    assert mild.global_threshold == pytest.approx(0.95) and mild.per_class[2] == pytest.approx(0.9)
    broken = tighten(t, 80, 100)  # upper bound below target: auto-accept stops
    assert broken.global_threshold == NEVER and broken.per_class == {2: NEVER}
    assert tighten(t, 0, 0) == t


def test_critical_classes_are_never_auto_accepted() -> None:
    rng = np.random.default_rng(0)
    zero = Thresholds(global_threshold=0.0)  # would accept everything else
    for _ in range(200):
        c = int(rng.integers(2, 12))
        probs = rng.dirichlet(np.full(c, rng.uniform(0.05, 2.0)), size=300)
        critical = rng.choice(c, size=int(rng.integers(1, c)), replace=False)
        plausibility = float(rng.uniform(0.05, 0.5))
        mask = auto_accept_mask(probs, zero, critical, plausibility=plausibility)
        pred = probs.argmax(axis=1)
        assert not np.isin(pred[mask], critical).any()
        assert (probs[mask][:, critical] < plausibility).all()
        safe = ~np.isin(pred, critical) & (probs[:, critical].max(axis=1) < plausibility)
        assert (mask == safe).all()  # everything else is accepted at threshold 0


def test_mask_uses_per_class_thresholds_and_checks_input() -> None:
    probs = np.array([[0.95, 0.03, 0.02], [0.03, 0.95, 0.02], [0.1, 0.1, 0.8]])
    t = Thresholds(global_threshold=0.9, per_class={1: 0.99})
    assert auto_accept_mask(probs, t, np.array([], dtype=int)).tolist() == [True, False, False]
    assert auto_accept_mask(probs, t, np.array([2]), plausibility=0.02).tolist() == [
        False, False, False]
    with pytest.raises(ValidationError):
        auto_accept_mask(probs, t, np.array([3]))
    with pytest.raises(ValidationError):
        calibrate_thresholds(np.array([0.5, 1.5]), np.array([0, 1]), np.array([True, True]))
