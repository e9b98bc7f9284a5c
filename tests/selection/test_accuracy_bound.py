"""The accuracy bound behind auto-accept: a temperature and a label-noise rate, bootstrapped."""

from __future__ import annotations

import numpy as np

from labelloop.selection.accuracy_bound import (
    NEVER,
    NoisyTemperature,
    bootstrap_fits,
    fit_noisy_temperature,
    lowest_bounded,
)
from labelloop.selection.auto_accept import _lowest_estimated


def noisy_rows(rng: np.random.Generator, n: int, sharpen: float, noise: float,
               c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(n, c) model probabilities softmax(sharpen * z) and labels drawn from softmax(z), then
    replaced by a uniform random class with probability ``noise``."""
    z = rng.normal(0.0, 2.5, (n, c))
    z[:, 0] += rng.uniform(0, 6, n)
    true_p = np.exp(z - z.max(1, keepdims=True))
    true_p /= true_p.sum(1, keepdims=True)
    y = (true_p.cumsum(1) < rng.uniform(size=(n, 1))).sum(1)
    y = np.where(rng.uniform(size=n) < noise, rng.integers(0, c, n), y)
    model = np.exp(sharpen * (z - z.max(1, keepdims=True)))
    return model / model.sum(1, keepdims=True), y


def test_fit_recovers_the_temperature_and_the_label_noise() -> None:
    rng = np.random.default_rng(0)
    probs, y = noisy_rows(rng, 6000, sharpen=2.0, noise=0.08)
    fit = fit_noisy_temperature(probs, y)
    assert abs(fit.temperature - 2.0) < 0.2 and abs(fit.noise - 0.08) < 0.02
    clean = fit_noisy_temperature(*noisy_rows(rng, 6000, sharpen=2.0, noise=0.0))
    assert abs(clean.temperature - 2.0) < 0.2 and clean.noise < 0.01
    # The noise caps every item's expected accuracy: (1 - eps) * 1 + eps / c at most.
    assert fit.accuracy(probs).max() <= 1 - fit.noise * 3 / 4 + 1e-12
    assert fit_noisy_temperature(probs[:5], y[:5]).noise == 0.0  # too few rows to say


def test_bootstrap_spread_shrinks_with_more_calibration_rows() -> None:
    rng = np.random.default_rng(1)
    spread = {}
    for n in (150, 2400):
        probs, y = noisy_rows(rng, n, sharpen=1.5, noise=0.0)
        fits = bootstrap_fits(probs, y, 60, np.random.default_rng(0))
        spread[n] = np.std([f.temperature for f in fits])
    assert spread[2400] < spread[150] / 2.5  # ~ 1 / sqrt(n): a 16x sample, a 4x narrower T


def test_lowest_bounded_is_the_point_estimate_without_spread_and_stricter_with_it() -> None:
    rng = np.random.default_rng(2)
    conf = np.sort(1 - rng.beta(0.6, 8.0, 3000))
    same = np.tile(conf, (50, 1))  # every bootstrap fit agrees with the point estimate
    point = _lowest_estimated(conf, 0.98)
    assert lowest_bounded(conf, same, 0.98, 0.9) == point
    shifted = same - rng.normal(0.0, 0.004, (50, 1))  # the fits disagree by a few points
    assert lowest_bounded(conf, shifted, 0.98, 0.9) > point
    assert lowest_bounded(conf, shifted, 0.98, 0.95) >= lowest_bounded(conf, shifted, 0.98, 0.9)
    assert lowest_bounded(conf, same - 0.05, 0.98, 0.9) == NEVER  # no cut can reach it
    assert lowest_bounded(np.zeros(0), np.zeros((50, 0)), 0.98, 0.9) == NEVER
    ties = np.array([0.999, 0.99, 0.99, 0.5])  # the tied pair goes in together, or not at all
    acc = np.tile([1.0, 1.0, 0.9, 0.5], (5, 1))
    assert lowest_bounded(ties, acc, 0.96, 0.9) == 0.99
    assert lowest_bounded(ties, acc, 0.97, 0.9) == 0.999


def test_accuracy_of_a_fit_is_its_calibrated_top_probability_less_the_noise() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(NoisyTemperature(1.0, 0.0).accuracy(probs), [0.7, 0.8])
    assert np.allclose(NoisyTemperature(1.0, 0.3).accuracy(probs), [0.7 * 0.7 + 0.1,
                                                                    0.7 * 0.8 + 0.1])
    assert NoisyTemperature(1.0, 0.1).accuracy(np.zeros((0, 3))).shape == (0,)
