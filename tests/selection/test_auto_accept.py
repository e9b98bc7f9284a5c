"""Auto-accept: calibrated thresholds keep their promise, audits tighten, critical stays human."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.core.errors import ValidationError
from labelloop.selection.auto_accept import (
    NEVER,
    Thresholds,
    audit_interval,
    auto_accept_mask,
    calibrate_thresholds,
    estimated_thresholds,
    pool_estimate,
    tighten,
)

from .test_accuracy_bound import noisy_rows


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


def _overconfident_pool(rng: np.random.Generator, n: int, sharpen: float,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) model probs softmax(sharpen * z) with truth drawn from softmax(z): the model's
    confidence is off by temperature ``sharpen`` (> 1: overconfident)."""
    z = rng.normal(0.0, 2.5, (n, 4))
    z[:, 0] += rng.uniform(0, 6, n)
    true_p = np.exp(z - z.max(1, keepdims=True))
    true_p /= true_p.sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=p) for p in true_p])
    model = np.exp(sharpen * (z - z.max(1, keepdims=True)))
    return model / model.sum(1, keepdims=True), y


@pytest.mark.parametrize(("seed", "sharpen"), [(0, 2.0), (1, 0.5), (2, 1.0)])
def test_pool_estimate_keeps_the_promise_whatever_the_model_calibration(seed, sharpen) -> None:
    rng = np.random.default_rng(seed)
    pool, pool_y = _overconfident_pool(rng, 40_000, sharpen)
    cal, cal_y = _overconfident_pool(rng, 400, sharpen)  # the random calibration sample
    thresholds, check = pool_estimate(pool, cal, cal_y, critical=np.array([], int), target=0.98)
    assert thresholds.method == "pool-estimate"
    assert abs(thresholds.temperature - sharpen) < 0.35 * sharpen  # T undoes the sharpening
    accepted = auto_accept_mask(pool, thresholds, np.array([], int))
    assert accepted.mean() > 0.2  # a useful share...
    assert (pool.argmax(1) == pool_y)[accepted].mean() >= 0.97  # ...near the promise
    assert abs(check["pool_share_estimated"] - accepted.mean()) < 1e-9
    naive = auto_accept_mask(pool, Thresholds(global_threshold=0.98), np.array([], int))
    if sharpen > 1:  # trusting raw confidence of an overconfident model breaks the promise
        assert (pool.argmax(1) == pool_y)[naive].mean() < 0.97


def test_pool_estimate_is_switched_off_by_a_calibration_sample_that_disagrees() -> None:
    rng = np.random.default_rng(5)
    pool, _ = _overconfident_pool(rng, 5000, 1.0)
    cal, _ = _overconfident_pool(rng, 300, 1.0)
    wrong = (cal.argmax(1) + 1) % 4  # every calibration label contradicts the model
    thresholds, check = pool_estimate(pool, cal, wrong, critical=np.array([], int))
    assert thresholds.global_threshold == NEVER or check["calibration_check"]["n"] == 0
    assert not auto_accept_mask(pool, thresholds, np.array([], int)).any()
    with pytest.raises(ValidationError, match="calibration rows"):
        pool_estimate(pool, cal[:, :3], wrong, critical=np.array([], int))


def test_estimated_thresholds_leave_critical_items_out() -> None:
    rng = np.random.default_rng(7)
    pool, _ = _overconfident_pool(rng, 5000, 1.0)
    pool = pool[:, [1, 0, 2, 3]]  # class 1 is now the confident one
    t = estimated_thresholds(pool, 1.0, critical=np.array([1]), target=0.9)
    assert 1 not in t.per_class
    assert not auto_accept_mask(pool, t, np.array([1]))[pool.argmax(1) == 1].any()


def _runs_kept(sharpen: float, noise: float, n_cal: int, runs: int = 10,
               ) -> tuple[dict[str, int], dict[str, float], list[float]]:
    """Runs (seeds) whose accepted pool items are >= 0.98 accurate (or none accepted), and the
    mean share accepted, for the point estimate (mean calibrated confidence under the fitted
    temperature) and for ``pool_estimate``'s bound, from ``n_cal`` calibration rows."""
    from labelloop.prelabel.calibration import fit_temperature

    none = np.array([], int)
    kept, share, noise_fit = {"point": 0, "bound": 0}, {"point": 0.0, "bound": 0.0}, []
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        pool, pool_y = noisy_rows(rng, 5000, sharpen, noise)
        cal, cal_y = noisy_rows(rng, n_cal, sharpen, noise)
        right = pool.argmax(1) == pool_y
        temperature = fit_temperature(np.log(np.clip(cal, 1e-12, 1.0)), cal_y)
        bound, record = pool_estimate(pool, cal, cal_y, none, 0.98, min_per_class=10**9,
                                      draws=100)
        noise_fit.append(record["bound"]["noise"])
        for name, t in (("point", estimated_thresholds(pool, temperature, none, 0.98,
                                                       min_per_class=10**9)),
                        ("bound", bound)):
            accepted = auto_accept_mask(pool, t, none)
            kept[name] += int(not accepted.any() or right[accepted].mean() >= 0.98)
            share[name] += accepted.mean() / runs
    return kept, share, noise_fit


def test_the_bound_keeps_the_promise_run_by_run_where_the_point_estimate_does_not() -> None:
    # An overconfident model, 200 random calibration rows per run: the temperature fitted on
    # them is right on average, not in every run, so the point estimate promises too much in
    # half the runs; the bound at level 0.9 keeps the promise in (at least) 9 runs of 10 and
    # pays for it with a smaller share.
    kept, share, _ = _runs_kept(sharpen=2.0, noise=0.0, n_cal=200)
    assert kept["point"] <= 6
    assert kept["bound"] >= 9
    assert 0.15 < share["bound"] < share["point"]


def test_few_calibration_rows_make_the_threshold_stricter_than_the_point_estimate() -> None:
    rng = np.random.default_rng(3)
    pool, _ = noisy_rows(rng, 5000, sharpen=1.5, noise=0.0)
    none = np.array([], int)
    gap = {}
    for n_cal in (150, 4000):
        cal, cal_y = noisy_rows(rng, n_cal, sharpen=1.5, noise=0.0)
        bound, record = pool_estimate(pool, cal, cal_y, none, 0.98, min_per_class=10**9,
                                      draws=100)
        point = estimated_thresholds(pool, bound.temperature, none, 0.98, min_per_class=10**9)
        assert bound.global_threshold > point.global_threshold
        assert record["bound"]["accuracy_bound"] >= 0.98
        gap[n_cal] = (auto_accept_mask(pool, point, none).mean()
                      - auto_accept_mask(pool, bound, none).mean())
    assert gap[150] > 2 * gap[4000] > 0  # the price of the promise falls with more rows


def test_label_noise_the_temperature_cannot_see_switches_auto_accept_off() -> None:
    # 6% of labels are random whatever the confidence: no item can be 98% right. A temperature
    # alone reads the noise as overconfidence and still finds a "98%" set (94-96% right);
    # the noise rate fitted beside it caps every item's accuracy below the target.
    kept, share, noise_fit = _runs_kept(sharpen=1.0, noise=0.06, n_cal=400, runs=5)
    assert kept["point"] == 0 and share["point"] > 0.05
    assert kept["bound"] == 5 and share["bound"] == 0.0
    assert min(noise_fit) > 0.02


def test_new_knobs_reject_bad_values_and_store_nothing(tmp_path) -> None:
    from sqlalchemy import func, select

    from labelloop.access.projects import create_project
    from labelloop.prelabel.calibration import temperature_scaled
    from labelloop.store.db import open_session
    from labelloop.store.models import Project

    url = f"sqlite:///{tmp_path / 'knobs.db'}"
    with pytest.raises(ValidationError, match="calibration_share"):
        with open_session(url) as s:
            create_project(s, "p", ["a", "b"], calibration_share=0.9)
    with open_session(url) as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValidationError, match="temperature"):
            temperature_scaled(np.array([[0.6, 0.4]]), bad)


def test_pool_estimate_gives_classes_their_own_threshold_only_where_counts_allow() -> None:
    rng = np.random.default_rng(11)
    pool, pool_y = _overconfident_pool(rng, 40_000, 1.0)
    cal, cal_y = _overconfident_pool(rng, 2000, 1.0)  # enough rows for a close temperature
    counts = np.bincount(cal.argmax(1), minlength=4)
    none = np.array([], int)
    each, _ = pool_estimate(pool, cal, cal_y, critical=none, target=0.98)
    assert set(each.per_class) == set(np.flatnonzero(counts >= 30).tolist())
    shared, _ = pool_estimate(pool, cal, cal_y, critical=none, target=0.98,
                              min_per_class=int(counts.max()) + 1)
    assert shared.per_class == {}  # too few calibration rows for any class: one threshold
    # One threshold over all classes accepts in order of calibrated confidence: more items
    # for the same promise than one threshold per class, each held to the target alone.
    right = pool.argmax(1) == pool_y
    by_class = auto_accept_mask(pool, each, none)
    pooled = auto_accept_mask(pool, shared, none)
    assert pooled.mean() > by_class.mean()
    assert right[pooled].mean() >= 0.97 and right[by_class].mean() >= 0.97
    with pytest.raises(ValidationError, match="min_per_class"):
        pool_estimate(pool, cal, cal_y, critical=none, min_per_class=0)
