"""Auto-accept with a measured error bound: calibrate thresholds, audit them, tighten them.

Two bounds, for two kinds of evidence:

- on human-checked items alone (the fallback before enough random calibration rows exist,
  and every audit): the exact Clopper-Pearson interval (Clopper & Pearson, 1934, "The use of
  confidence or fiducial limits illustrated in the case of the binomial", Biometrika 26):
  conservative (coverage >= the nominal level for every n and p), which is what a promise to
  a user ("at least 98% of auto-accepted labels are right") needs; Wilson is shorter but can
  under-cover near p = 1, exactly where auto-accept thresholds live.
- on the pool, once random calibration rows exist (``pool_estimate``): a one-sided bootstrap
  bound on the accepted pool items' accuracy under a temperature-and-label-noise model fitted
  on those rows (``selection.accuracy_bound``; why, in ``pool_estimate``).

Shapes: ``n`` calibration items, ``c`` classes.

>>> import numpy as np
>>> low, high = audit_interval(98, 100)
>>> round(low, 3), round(high, 3)
(0.93, 0.998)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import beta

from labelloop.core.errors import ValidationError
from labelloop.prelabel.calibration import temperature_scaled
from labelloop.selection.accuracy_bound import (
    NEVER,  # a threshold no probability reaches: auto-accept is off
    bootstrap_fits,
    fit_noisy_temperature,
    lowest_bounded,
)


@dataclass(frozen=True)
class Thresholds:
    """Confidence a prediction needs to be auto-accepted: per class where measured, else global.

    per_class maps class index -> threshold; ``NEVER`` (1.01) means never auto-accept.
    """

    global_threshold: float
    per_class: dict[int, float] = field(default_factory=dict)
    target: float = 0.98
    confidence_level: float = 0.95
    method: str = "clopper-pearson"
    temperature: float = 1.0  # thresholds compare softmax(log p / T), the calibrated confidence

    def for_classes(self, predicted: np.ndarray) -> np.ndarray:
        """(n,) int predicted classes -> (n,) float thresholds."""
        predicted = np.asarray(predicted, dtype=np.int64)
        size = max(int(predicted.max(initial=-1)), max(self.per_class, default=-1)) + 1
        table = np.full(size, self.global_threshold, dtype=np.float64)
        for c, t in self.per_class.items():
            table[c] = t
        return table[predicted]


def audit_interval(n_correct: int, n: int, confidence_level: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for accuracy from ``n_correct`` of ``n`` audited.

    n = 0 gives (0.0, 1.0): nothing is known.
    """
    _check_level(confidence_level)
    if n < 0 or n_correct < 0 or n_correct > n:
        raise ValidationError(f"need 0 <= n_correct <= n, got n_correct={n_correct}, n={n}",
                              where="audit")
    alpha = 1.0 - confidence_level
    low = 0.0 if n_correct == 0 else float(beta.ppf(alpha / 2, n_correct, n - n_correct + 1))
    high = 1.0 if n_correct == n else float(beta.ppf(1 - alpha / 2, n_correct + 1,
                                                       n - n_correct))
    return low, high


def lowest_threshold(confidence: np.ndarray, correct: np.ndarray, target: float,
                     confidence_level: float) -> float:
    """The lowest t with Clopper-Pearson lower bound of accuracy{conf >= t} >= target.

    confidence: (n,), correct: (n,) bool. Every distinct confidence is a candidate; ``NEVER``
    when none qualifies. Scanning many thresholds and keeping the best is a mild multiple
    comparison: the audit (``tighten``) on fresh items is the check that catches it.
    """
    if len(confidence) == 0:
        return NEVER
    order = np.argsort(-confidence, kind="stable")
    conf, ok = confidence[order], correct[order].astype(np.int64)
    n_above = np.arange(1, len(conf) + 1)
    k_above = np.cumsum(ok)
    # Only the last item of a run of equal confidences is a real cut (ties go in together).
    cut = np.r_[conf[1:] != conf[:-1], True]
    alpha = 1.0 - confidence_level
    n_c, k_c = n_above[cut], k_above[cut]
    low = np.where(k_c > 0, beta.ppf(alpha / 2, np.maximum(k_c, 1), n_c - k_c + 1), 0.0)
    passing = np.flatnonzero(low >= target)
    if passing.size == 0:
        return NEVER
    return float(conf[cut][passing[-1]])


def calibrate_thresholds(confidence: np.ndarray, predicted: np.ndarray, correct: np.ndarray,
                         target: float = 0.98, min_per_class: int = 30,
                         confidence_level: float = 0.95) -> Thresholds:
    """Global and per-class auto-accept thresholds from a labeled calibration set.

    confidence: (n,) top probability; predicted: (n,) int predicted class; correct: (n,) bool
    prediction == human label. Global: ``lowest_threshold`` over all items. A class with at
    least ``min_per_class`` predictions gets its own threshold; if it has too few items for
    any bound to clear ``target`` even with no errors, it keeps the global threshold unless
    its own items above that threshold are less accurate than ``target`` (then ``NEVER``).
    Classes with fewer predictions use the global threshold.
    """
    conf, pred, ok = _check_calibration(confidence, predicted, correct)
    _check_level(confidence_level)
    _check_target(target)
    global_t = lowest_threshold(conf, ok, target, confidence_level)
    # Smallest count whose all-correct lower bound reaches target: (alpha/2)^(1/n) >= target.
    n_needed = int(np.ceil(np.log((1 - confidence_level) / 2) / np.log(target)))
    per_class: dict[int, float] = {}
    for c in np.unique(pred):
        mine = pred == c
        if mine.sum() < min_per_class:
            continue
        own = lowest_threshold(conf[mine], ok[mine], target, confidence_level)
        if own == NEVER and mine.sum() < n_needed:
            above = mine & (conf >= global_t)
            own = global_t if above.sum() == 0 or ok[above].mean() >= target else NEVER
        per_class[int(c)] = own
    return Thresholds(global_threshold=global_t, per_class=per_class, target=target,
                      confidence_level=confidence_level)


def _lowest_estimated(calibrated: np.ndarray, target: float) -> float:
    """Lowest t with mean(calibrated[calibrated >= t]) >= target, else ``NEVER``."""
    if len(calibrated) == 0:
        return NEVER
    conf = np.sort(calibrated)[::-1]
    running = np.cumsum(conf) / np.arange(1, len(conf) + 1)
    cut = np.r_[conf[1:] != conf[:-1], True]  # ties go in together
    passing = np.flatnonzero(cut & (running >= target))
    return NEVER if passing.size == 0 else float(conf[passing[-1]])


def estimated_thresholds(pool_probs: np.ndarray, temperature: float, critical: np.ndarray,
                         target: float = 0.98, plausibility: float = 0.2,
                         min_per_class: int = 1, classes: set[int] | None = None,
                         ) -> Thresholds:
    """Point-estimate thresholds from the pool's own calibrated confidence.

    pool_probs: (n, c) the model's probabilities on the unlabeled pool; ``temperature`` was
    fitted on held-out human labels of a *random* calibration sample (uncertainty-picked items
    are harder than the pool and bias any estimate taken from them). The expected accuracy
    of the items accepted at threshold t is the mean calibrated confidence of the pool items
    above t (thresholds are on the calibrated scale and carry ``temperature``); the global
    threshold is the lowest t where that mean reaches ``target``, and so
    is each class's, over the pool items predicted as that class (classes with fewer than
    ``min_per_class`` of them use the global one; or, given ``classes``, those classes have
    their own). Safety-critical items are left out: they are never accepted. Every accepted
    group meets ``target`` in expectation only: in a given project the temperature is off by
    its sampling error, which ``pool_estimate`` bounds.
    """
    cal, pred = _pool_confidence(pool_probs, temperature, critical, plausibility)
    if classes is None:
        counts = np.bincount(pred, minlength=np.shape(pool_probs)[1])
        classes = {int(c) for c in np.flatnonzero(counts >= max(1, min_per_class))}
    return _thresholds_from(cal, pred, temperature, target, classes)


def _pool_confidence(pool_probs: np.ndarray, temperature: float, critical: np.ndarray,
                     plausibility: float) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated top probability (m,) and predicted class (m,) of the m non-critical pool
    items: what the pool estimate and its calibration-row check both read."""
    probs = np.asarray(pool_probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValidationError(f"pool_probs must be (n, c), got shape {probs.shape}",
                              where="pool_probs")
    probs = probs[~critical_mask(probs, critical, plausibility)]
    pred = probs.argmax(axis=1)
    return temperature_scaled(probs, temperature)[np.arange(len(pred)), pred], pred


def _thresholds_from(cal: np.ndarray, pred: np.ndarray, temperature: float, target: float,
                     own: set[int]) -> Thresholds:
    """Thresholds on the pool's calibrated confidence ``cal`` (m,), predicted classes ``pred``.

    ``own``: the classes that get a threshold of their own (those without pool items get
    none). The global threshold is set on the items of the other classes (on all items when
    every class has its own), so each group meets ``target``.
    """
    _check_target(target)
    global_t, per_class = _by_group(pred, own, lambda mine: _lowest_estimated(cal[mine], target))
    return Thresholds(global_threshold=global_t, per_class=per_class, target=target,
                      method="pool-estimate", temperature=float(temperature))


def _by_group(pred: np.ndarray, own: set[int],
              lowest: Callable[[np.ndarray], float]) -> tuple[float, dict[int, float]]:
    """(global threshold, per-class thresholds): ``lowest(mask)`` on the items of each class in
    ``own`` and on the rest (on all items when every class has its own). pred: (m,)."""
    shared = ~np.isin(pred, sorted(own))
    global_t = lowest(shared if shared.any() else np.ones(len(pred), dtype=bool))
    return global_t, {int(c): lowest(pred == c) for c in np.unique(pred) if int(c) in own}


MIN_CALIBRATION_PER_CLASS = 30  # calibration rows predicted as a class for its own threshold
BOUND_LEVEL = 0.9  # one-sided level of the accuracy bound: the promise holds in 9 runs of 10
BOOTSTRAP_DRAWS = 200  # resamples of the calibration rows behind the bound
BOUND_POOL_ROWS = 20_000  # pool items the bound is computed on (a uniform sample of them)


def pool_estimate(pool_probs: np.ndarray, cal_probs: np.ndarray, cal_y: np.ndarray,
                  critical: np.ndarray, target: float = 0.98, plausibility: float = 0.2,
                  min_per_class: int = MIN_CALIBRATION_PER_CLASS, level: float = BOUND_LEVEL,
                  draws: int = BOOTSTRAP_DRAWS, seed: int = 0,
                  ) -> tuple[Thresholds, dict[str, object]]:
    """Thresholds whose accepted pool items are at least ``target`` accurate at ``level``.

    pool_probs: (m, c) the model on the unlabeled pool; cal_probs: (n, c) out-of-fold
    probabilities of a random calibration sample with labels cal_y (n,) (uncertainty-picked
    rows are harder than the pool: a temperature fitted on all human rows is ~0.09 too high on
    BANKING77, too strict to be useful).

    The bound (``selection.accuracy_bound``): a temperature T and a label-noise rate eps are
    fitted on the calibration rows, and refitted on ``draws`` bootstrap resamples of them. Each
    fit gives every non-critical pool item an expected accuracy, (1 - eps) * calibrated top
    probability + eps / c; a threshold qualifies when the (1 - ``level``) quantile, over the
    fits, of the mean expected accuracy of the items it accepts reaches ``target``, and the
    lowest qualifying one is kept. Items are ordered by their calibrated confidence under the
    fitted T (the thresholds' scale, carried in ``temperature``).

    Why this bound: the point estimate (the mean calibrated confidence) is right on average
    but its error from run to run is that of T fitted on ~190 rows; on BANKING77 at 1,000
    labels 3 of 10 runs fell below 0.98. A one-sided bound at level 0.9 is the per-run promise
    "9 runs of 10" written as a confidence level; over 50 runs it held in 46 (92%).
    Clopper-Pearson, Wilson or a Beta posterior on the calibration rows above a threshold need
    no model but only have those ~100 rows: all-correct rows certify 0.98 at 90% only from
    114 on, so they accept almost nothing. The likelihood's own interval for T is half as wide
    as the real spread (the model is not exact); the bootstrap's matches it. The noise rate
    is what keeps a data set whose surest predictions are still 3% wrong (AG News) from being
    promised 99% by the temperature; on data without such noise it fits ~0 and costs little.

    Per class where the counts allow: a class gets a threshold of its own only when at least
    ``min_per_class`` non-critical calibration rows are predicted as it (4 news topics after
    200 random labels: each; 77 banking intents: none). The other classes share one
    threshold, set on their pooled items in order of calibrated confidence: for the same
    expected accuracy that accepts more than one threshold per class, each held to
    ``target`` on its own. ``min_per_class`` must be at least 1. The bound is computed on at
    most ``BOUND_POOL_ROWS`` pool items (a uniform sample; seeded by ``seed``, as the
    bootstrap).

    Returns the thresholds and the record: {"calibration_check": {n, correct, interval,
    share} of the calibration rows the thresholds accept, "pool_share_estimated",
    "bound": {level, draws, temperature, noise, accuracy_estimated, accuracy_bound}} where
    the last two are the point estimate and the lower bound of the accepted pool items'
    accuracy.
    """
    cal_probs = np.asarray(cal_probs, dtype=np.float64)
    cal_y = np.asarray(cal_y, dtype=np.int64)
    if len(cal_y) == 0 or cal_probs.shape != (len(cal_y), np.shape(pool_probs)[1]):
        raise ValidationError(f"calibration rows must be (n >= 1, {np.shape(pool_probs)[1]}) "
                              f"probabilities with one label each, got {cal_probs.shape} and "
                              f"{len(cal_y)} labels", where="calibration")
    if min_per_class < 1:
        raise ValidationError(f"min_per_class must be at least 1, got {min_per_class}",
                              where="min_per_class")
    _check_level(level)
    _check_target(target)
    if draws < 1:
        raise ValidationError(f"draws must be at least 1, got {draws}", where="draws")
    rng = np.random.default_rng(seed)
    fit = fit_noisy_temperature(cal_probs, cal_y)
    fits = bootstrap_fits(cal_probs, cal_y, draws, rng)
    probs = np.asarray(pool_probs, dtype=np.float64)
    probs = probs[~critical_mask(probs, critical, plausibility)]
    if len(probs) > BOUND_POOL_ROWS:
        probs = probs[np.sort(rng.choice(len(probs), BOUND_POOL_ROWS, replace=False))]
    pred = probs.argmax(axis=1)
    order = temperature_scaled(probs, fit.temperature)[np.arange(len(pred)), pred] \
        if len(probs) else np.zeros(0)
    accuracy = np.stack([f.accuracy(probs) for f in fits])  # (draws, m)
    keep = ~critical_mask(cal_probs, critical, plausibility)
    counts = np.bincount(cal_probs.argmax(axis=1)[keep], minlength=cal_probs.shape[1])
    global_t, per_class = _by_group(
        pred, {int(c) for c in np.flatnonzero(counts >= min_per_class)},
        lambda mine: lowest_bounded(order[mine], accuracy[:, mine], target, level))
    t = Thresholds(global_threshold=global_t, per_class=per_class, target=target,
                   method="pool-estimate", temperature=fit.temperature)
    return t, _pool_record(t, pool_probs, cal_probs, cal_y, critical, plausibility,
                           {"level": level, "draws": draws, "temperature": fit.temperature,
                            "noise": fit.noise},
                           order >= t.for_classes(pred), fit.accuracy(probs), accuracy)


def _pool_record(t: Thresholds, pool_probs: np.ndarray, cal_probs: np.ndarray,
                 cal_y: np.ndarray, critical: np.ndarray, plausibility: float,
                 bound: dict[str, float], accepted: np.ndarray, estimate: np.ndarray,
                 draws: np.ndarray) -> dict[str, object]:
    """What ``pool_estimate`` stores beside its thresholds. accepted, estimate: (m,) over the
    bound's pool items; draws: (b, m) their expected accuracy under each bootstrap fit."""
    cal_accepted = auto_accept_mask(cal_probs, t, critical, plausibility)
    n = int(cal_accepted.sum())
    correct = int((cal_probs.argmax(axis=1) == cal_y)[cal_accepted].sum())
    low, high = audit_interval(correct, n, t.confidence_level)
    pool_share = float(auto_accept_mask(pool_probs, t, critical, plausibility).mean()) \
        if len(pool_probs) else 0.0
    some = bool(accepted.any())
    return {"calibration_check": {"n": n, "correct": correct, "interval": [low, high],
                                  "share": n / len(cal_y)},
            "pool_share_estimated": pool_share,
            "bound": {**bound,
                      "accuracy_estimated": float(estimate[accepted].mean()) if some else None,
                      "accuracy_bound": float(np.quantile(draws[:, accepted].mean(axis=1),
                                                          1.0 - bound["level"]))
                      if some else None}}


def tighten(thresholds: Thresholds, audit_correct: int, audit_n: int,
            target: float | None = None) -> Thresholds:
    """New thresholds after a human audit of ``audit_n`` auto-accepted items.

    Rule (``target`` defaults to the calibration target; interval at its confidence level):
    - upper Clopper-Pearson bound < target: the promise is broken beyond doubt; auto-accept
      stops (every threshold ``NEVER``) until thresholds are calibrated again on fresh labels.
    - point estimate < target <= upper bound: probably too loose; every threshold moves
      halfway to 1.0 (t -> (1 + t) / 2), so fewer, more confident items are accepted.
    - otherwise unchanged. Thresholds only ever rise here; lowering them is calibration's job.
    """
    target = thresholds.target if target is None else target
    if audit_n == 0:
        return thresholds
    _, high = audit_interval(audit_correct, audit_n, thresholds.confidence_level)
    if high < target:
        return replace(thresholds, global_threshold=NEVER,
                       per_class={c: NEVER for c in thresholds.per_class})
    if audit_correct / audit_n < target:
        def up(t: float) -> float:
            return t if t >= 1.0 else (1.0 + t) / 2

        return replace(thresholds, global_threshold=up(thresholds.global_threshold),
                       per_class={c: up(t) for c, t in thresholds.per_class.items()})
    return thresholds


def critical_mask(probs: np.ndarray, critical: np.ndarray, plausibility: float = 0.2,
                  ) -> np.ndarray:
    """(n, c) probabilities -> (n,) bool: the prediction is a safety-critical class
    (``critical``, int class indices), or some critical class has probability >=
    ``plausibility``. The one definition routing, auto-accept and gold tasks share."""
    probs = np.asarray(probs)
    if probs.dtype.kind != "f":  # float32 stays float32: no 1M x c copy
        probs = probs.astype(np.float64)
    critical = np.asarray(critical, dtype=np.int64).reshape(-1)
    if not critical.size or len(probs) == 0:
        return np.zeros(len(probs), dtype=bool)
    return np.isin(probs.argmax(axis=1), critical) | (
        probs[:, critical].max(axis=1) >= plausibility)


def auto_accept_mask(probs: np.ndarray, thresholds: Thresholds, critical: np.ndarray,
                     plausibility: float = 0.2) -> np.ndarray:
    """(n, c) probabilities -> (n,) bool: True where the prediction may be auto-accepted.

    Confidence is calibrated by ``thresholds.temperature`` first (the scale the thresholds
    were set on). Never auto-accepted, whatever the confidence: a prediction of a
    safety-critical class (``critical``, int class indices), or any item where a critical
    class has probability >= ``plausibility``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValidationError(f"probs must be (n, c), got shape {probs.shape}", where="probs")
    critical = np.asarray(critical, dtype=np.int64).reshape(-1)
    if critical.size and (critical.min() < 0 or critical.max() >= probs.shape[1]):
        raise ValidationError(f"critical class indices must be in [0, {probs.shape[1]}), got "
                              f"{critical.tolist()}", where="critical")
    if len(probs) == 0:
        return np.zeros(0, dtype=bool)
    pred = probs.argmax(axis=1)
    scaled = probs if thresholds.temperature == 1.0 else \
        temperature_scaled(probs, thresholds.temperature)
    conf = scaled[np.arange(len(probs)), pred]
    return (conf >= thresholds.for_classes(pred)) & ~critical_mask(probs, critical,
                                                                    plausibility)


def _check_target(target: float) -> None:
    if not 0.0 < target < 1.0:
        raise ValidationError(f"target must be in (0, 1), got {target}", where="target")


def _check_level(confidence_level: float) -> None:
    if not 0.0 < confidence_level < 1.0:
        raise ValidationError(f"confidence_level must be in (0, 1), got {confidence_level}",
                              where="confidence_level")


def _check_calibration(confidence: np.ndarray, predicted: np.ndarray,
                       correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    pred = np.asarray(predicted).reshape(-1)
    ok = np.asarray(correct).reshape(-1)
    if not (len(conf) == len(pred) == len(ok)):
        raise ValidationError(f"confidence, predicted and correct must have one entry per item, "
                              f"got {len(conf)}, {len(pred)}, {len(ok)}", where="calibration")
    if len(conf) and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValidationError("confidence must be finite and within [0, 1]", where="confidence")
    if pred.dtype.kind not in "iu" or (len(pred) and pred.min() < 0):
        raise ValidationError("predicted must be non-negative integer class indices",
                              where="predicted")
    return conf, pred.astype(np.int64), ok.astype(bool)
