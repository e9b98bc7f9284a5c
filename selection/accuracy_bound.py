"""How accurate, at worst, are the pool items above a threshold? A bound from calibration rows.

The model of the truth given the classifier's probabilities ``p`` (c classes):

    P(label = k | p) = (1 - eps) * softmax(log p / T)_k + eps / c

a temperature ``T`` (Guo et al., 2017, "On calibration of modern neural networks", ICML)
and a uniform label-noise rate ``eps`` (Natarajan et al., 2013, "Learning with noisy labels",
NeurIPS): labels that no confidence predicts, such as ambiguous or mislabeled items. A
temperature alone cannot express them and promises 99% on the surest items of a data set
whose labels are 3% noise (AG News). Both are fitted by maximum likelihood on the random
calibration rows (``fit_noisy_temperature``); the expected accuracy of an item is then
``(1 - eps) * calibrated top probability + eps / c``.

The uncertainty is the calibration sample's: 190 random rows leave the temperature uncertain
by about 0.04 on BANKING77, enough to move the accuracy of the top half of the pool by
0.006-0.01, which is the whole margin between 0.98 and a useful share. It is measured by the
nonparametric bootstrap over the calibration rows (Efron & Tibshirani, 1993, "An
Introduction to the Bootstrap", ch. 13, percentile interval): refit ``(T, eps)`` on each
resample, and the one-sided lower bound at level ``level`` of the accepted items' accuracy
is the (1 - level) quantile of its estimates. The bootstrap rather than the likelihood's own
curvature because the model is not exact: on BANKING77 the likelihood interval of T is half as
wide as the run-to-run spread, the bootstrap's matches it.

Shapes: ``n`` calibration rows, ``m`` pool items, ``c`` classes, ``b`` bootstrap draws.

>>> import numpy as np
>>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]] * 10)
>>> fit = fit_noisy_temperature(probs, np.array([0, 0, 1, 1] * 10))
>>> bool(fit.temperature > 0 and 0.0 <= fit.noise <= 0.5)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from labelloop.prelabel.calibration import fit_temperature, temperature_scaled

NEVER = 1.01  # a threshold no probability reaches (the same as ``auto_accept.NEVER``)
MAX_NOISE = 0.5


@dataclass(frozen=True)
class NoisyTemperature:
    """A fitted temperature ``T`` and label-noise rate ``eps`` (see the module docstring)."""

    temperature: float
    noise: float

    def accuracy(self, probs: np.ndarray) -> np.ndarray:
        """(m, c) probabilities -> (m,) expected accuracy of each item's predicted label."""
        probs = np.asarray(probs, dtype=np.float64)
        if len(probs) == 0:
            return np.zeros(0)
        top = temperature_scaled(probs, self.temperature).max(axis=1)
        return (1.0 - self.noise) * top + self.noise / probs.shape[1]


def _nll_and_grad(theta: np.ndarray, log_p: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of the labels and its gradient in (log T, eps)."""
    log_t, eps = float(theta[0]), float(theta[1])
    z = log_p / np.exp(log_t)
    z -= z.max(axis=1, keepdims=True)
    s = np.exp(z)
    s /= s.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    s_y = s[rows, y]
    q = (1.0 - eps) * s_y + eps / log_p.shape[1]
    # d s_y / d log T = -s_y (z_y - sum_j s_j z_j)
    ds_dlogt = -s_y * (z[rows, y] - (s * z).sum(axis=1))
    grad = np.array([-((1.0 - eps) * ds_dlogt / q).mean(),
                     -((1.0 / log_p.shape[1] - s_y) / q).mean()])
    return float(-np.log(q).mean()), grad


def fit_noisy_temperature(probs: np.ndarray, y: np.ndarray) -> NoisyTemperature:
    """Maximum-likelihood ``(T, eps)`` on labeled rows: probs (n, c), y (n,) int labels.

    Started from the temperature alone (``prelabel.calibration.fit_temperature``) with no
    noise and with some, keeping the better optimum (the likelihood need not be concave).
    Fewer than 10 rows: T = 1, eps = 0, as ``fit_temperature``.
    """
    y = np.asarray(y, dtype=np.int64)
    log_p = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))
    t0 = fit_temperature(log_p, y)
    if len(y) < 10:
        return NoisyTemperature(temperature=t0, noise=0.0)
    best = None
    for eps0 in (0.0, 0.05):
        res = minimize(_nll_and_grad, np.array([np.log(t0), eps0]), args=(log_p, y), jac=True,
                       method="L-BFGS-B", bounds=[(-3.0, 3.0), (0.0, MAX_NOISE)])
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return NoisyTemperature(temperature=float(np.exp(best.x[0])), noise=float(best.x[1]))


def bootstrap_fits(probs: np.ndarray, y: np.ndarray, draws: int,
                   rng: np.random.Generator) -> list[NoisyTemperature]:
    """``fit_noisy_temperature`` on ``draws`` resamples (with replacement) of the n rows."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.int64)
    return [fit_noisy_temperature(probs[i], y[i])
            for i in (rng.integers(0, len(y), len(y)) for _ in range(draws))]


def lowest_bounded(order: np.ndarray, accuracy: np.ndarray, target: float,
                   level: float) -> float:
    """The lowest threshold whose accepted items' accuracy has a lower bound >= ``target``.

    order: (m,) the items' confidence on the thresholds' scale (accepted: order >= t);
    accuracy: (b, m) each item's expected accuracy under each bootstrap fit. For every cut,
    the accepted items' mean accuracy under each fit; its (1 - level) quantile over the fits
    is the one-sided lower bound. Ties in ``order`` go in together. ``NEVER`` when no cut
    qualifies (or there are no items).
    """
    if len(order) == 0:
        return NEVER
    idx = np.argsort(-order, kind="stable")
    conf = order[idx]
    running = np.cumsum(accuracy[:, idx], axis=1) / np.arange(1, len(conf) + 1)
    low = np.quantile(running, 1.0 - level, axis=0)
    passing = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True] & (low >= target))
    return NEVER if passing.size == 0 else float(conf[passing[-1]])
