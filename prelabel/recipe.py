"""The pre-labeler's recipe, chosen out of fold from the labels at hand.

A recipe is how the classifier head reads the embeddings: neighbour smoothing on or off and
its k (``prelabel.smoothing``), and the logistic regression's inverse regularisation C.
Which recipe is best depends on the data, not on the method: smoothing averages an item with
its pool neighbours, which helps when classes are topics (neighbours share the class) and
hurts when they are not (texts about the same subject belong to different classes: emotions,
sentiment, intents that cut across products). A user does not know in advance which kind of
data they have, so every retrain scores each candidate recipe by out-of-fold macro-F1 on the
human labels and keeps the one that wins by more than the noise (``choose_recipe``).

- **Weights.** Rows selection picked lean toward hard items; the uniform calibration sample
  (``selection.routing.CALIBRATION``) is the pool as it is. Each uniform row is weighted
  ``n_other / n_uniform`` (at most ``UNIFORM_WEIGHT_CAP``), so the score reads the pool's
  mix of easy and hard items as far as the sample allows.
- **Conservative while labels are few.** Below ``MIN_LABELS`` labels the incumbent (the
  project's current recipe, else the default) is kept unscored. Above, a challenger must beat
  the incumbent by more than ``SWITCH_Z`` standard errors of the paired difference (a paired
  bootstrap over rows of the same out-of-fold predictions), so the recipe moves only on
  evidence and does not flip with each batch.

Shapes: ``n`` labeled rows, ``d`` dimensions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from labelloop.core.errors import ValidationError
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.smoothing import NeighbourSmoothing

SMOOTHING_KS = (0, 5, 10, 20)  # 0: the plain classifier on raw embeddings
CS = (1.0, 10.0, 100.0)
MIN_LABELS = 40  # fewer labels: keep the incumbent, unscored
FOLDS = 5
MANY_LABELS, FOLDS_MANY = 500, 3  # from this many labels, 3 folds tell recipes apart
SWITCH_Z = 1.0  # a challenger must win by this many standard errors of the paired difference
BOOTSTRAP = 200
UNIFORM_WEIGHT_CAP = 5.0


@dataclass(frozen=True)
class Recipe:
    """How the head reads embeddings: smoothing k (0 = off) and the classifier's C."""

    smoothing_k: int = 10
    c: float = 10.0

    @property
    def key(self) -> str:
        return f"k{self.smoothing_k}-C{self.c:g}"

    @classmethod
    def from_key(cls, key: str) -> Recipe:
        k, c = key.split("-")
        return cls(smoothing_k=int(k[1:]), c=float(c[1:]))


DEFAULT = Recipe()


@dataclass
class RecipeChoice:
    """What ``choose_recipe`` chose, against what, and why (JSON via ``to_json``)."""

    recipe: Recipe
    incumbent: Recipe
    reason: str  # "few labels", "kept", "switched", "only candidate"
    n_labels: int
    n_uniform: int
    scores: dict[str, float] = field(default_factory=dict)  # key -> out-of-fold macro-F1
    gain: float = 0.0  # best challenger's score minus the incumbent's
    stderr: float = 0.0  # of that difference (paired bootstrap)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["recipe"], out["incumbent"] = self.recipe.key, self.incumbent.key
        return out


def candidates(smoothing: NeighbourSmoothing | None, c: float | None = None,
               ks: Sequence[int] = SMOOTHING_KS, cs: Sequence[float] = CS) -> list[Recipe]:
    """The grid: every k (only 0 without a smoothing index, none beyond its references) by
    every C (only ``c`` when the caller fixed it)."""
    usable = [k for k in ks if k == 0 or (smoothing is not None and k < smoothing.n_reference)]
    return [Recipe(k, float(cc)) for k in usable for cc in ((c,) if c is not None else cs)]


def uniform_weights(uniform: np.ndarray) -> np.ndarray:
    """(n,) row weights: 1 for selected rows, ``n_other / n_uniform`` (capped at
    ``UNIFORM_WEIGHT_CAP``, at least 1) for rows of the uniform sample."""
    uniform = np.asarray(uniform, dtype=bool)
    n_uniform = int(uniform.sum())
    weight = np.ones(len(uniform))
    if 0 < n_uniform < len(uniform):
        weight[uniform] = min(UNIFORM_WEIGHT_CAP, max(1.0, (len(uniform) - n_uniform) / n_uniform))
    return weight


def _features(x: np.ndarray, smoothing: NeighbourSmoothing | None, k: int) -> np.ndarray:
    return x if k == 0 or smoothing is None else smoothing.with_k(k).transform(x)


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds where every class has ``folds`` rows, else plain shuffled folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    _, counts = np.unique(y, return_counts=True)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) \
        if counts.min() >= folds else KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _fit_lr(z: np.ndarray, y: np.ndarray, c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The number of unique classes")
        return LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(z, y)


def out_of_fold(z: np.ndarray, y: np.ndarray, c: float,
                splits: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> np.ndarray:
    """(n,) out-of-fold predicted labels of a logistic regression with ``c`` on features z.
    A fold whose training part has one class predicts that class."""
    pred = np.empty(len(y), dtype=y.dtype)
    for fit_idx, held in splits:
        classes = np.unique(y[fit_idx])
        if len(classes) < 2:
            pred[held] = classes[0]
            continue
        pred[held] = _fit_lr(z[fit_idx], y[fit_idx], c, seed).predict(z[held])
    return pred


def macro_f1(y: np.ndarray, pred: np.ndarray, weight: np.ndarray) -> float:
    """Weighted macro-F1 over the classes present in ``y`` (equal to sklearn's
    ``f1_score(y, pred, labels=np.unique(y), average="macro", sample_weight=weight)``,
    tested). Our own because the paired bootstrap calls it 400 times per choice: sklearn's
    input checks cost about 2 ms a call against 0.1 ms here (timed on 300 rows)."""
    classes, codes = np.unique(np.concatenate([y, pred]), return_inverse=True)
    yc, pc = codes[:len(y)], codes[len(y):]
    m = len(classes)
    tp = np.bincount(yc[yc == pc], weights=weight[yc == pc], minlength=m)
    support = np.bincount(yc, weights=weight, minlength=m)
    predicted = np.bincount(pc, weights=weight, minlength=m)
    present = np.isin(np.arange(m), yc)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(m), where=denom > 0)
    return float(f1[present].mean())


def paired_stderr(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                  weight: np.ndarray, seed: int = 0, rounds: int = BOOTSTRAP) -> float:
    """Standard error of macro_f1(a) - macro_f1(b) over bootstrap resamples of the rows."""
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(rounds)
    for i in range(rounds):
        idx = rng.integers(0, n, n)
        diffs[i] = macro_f1(y[idx], pred_a[idx], weight[idx]) - \
            macro_f1(y[idx], pred_b[idx], weight[idx])
    return float(diffs.std(ddof=1))


def choose_recipe(x: np.ndarray, y: Sequence[Any] | np.ndarray,
                  smoothing: NeighbourSmoothing | None, *,
                  uniform: np.ndarray | None = None, incumbent: Recipe = DEFAULT,
                  c: float | None = None, grid: list[Recipe] | None = None,
                  folds: int = FOLDS, min_labels: int = MIN_LABELS,
                  seed: int = 0) -> RecipeChoice:
    """The recipe for a head on rows (x (n, d), y (n,)), chosen out of fold.

    smoothing: the neighbour index the smoothed recipes read (any k up to its references;
    None: only the plain classifier). uniform: (n,) bool, rows of the uniform calibration
    sample (weighted up, see ``uniform_weights``). incumbent: the recipe to keep unless a
    challenger wins by more than ``SWITCH_Z`` standard errors; it joins the grid if missing
    (and is replaced by the nearest usable recipe when it needs a smoothing there is none of).
    c: fix C (only k is chosen). Fewer than ``min_labels`` rows keep the incumbent unscored.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValidationError(f"rows of shape {x.shape} do not match {len(y)} labels",
                              where="recipe.rows")
    uniform = np.zeros(len(y), dtype=bool) if uniform is None else np.asarray(uniform, bool)
    grid = list(grid) if grid is not None else candidates(smoothing, c)
    if incumbent.smoothing_k and (smoothing is None
                                  or incumbent.smoothing_k >= smoothing.n_reference):
        incumbent = Recipe(0, incumbent.c)
    if c is not None and incumbent.c != c:
        incumbent = Recipe(incumbent.smoothing_k, float(c))
    if incumbent not in grid:
        grid.append(incumbent)
    base = {"incumbent": incumbent, "n_labels": len(y), "n_uniform": int(uniform.sum())}
    if len(y) < min_labels or len(np.unique(y)) < 2:
        return RecipeChoice(recipe=incumbent, reason="few labels", **base)
    if len(grid) == 1:
        return RecipeChoice(recipe=incumbent, reason="only candidate", **base)
    weight = uniform_weights(uniform)
    splits = _folds(y, min(folds if len(y) < MANY_LABELS else FOLDS_MANY, len(y)), seed)
    preds: dict[Recipe, np.ndarray] = {}
    scores: dict[Recipe, float] = {}
    features: dict[int, np.ndarray] = {}

    def score(recipes: list[Recipe]) -> None:
        for recipe in (r for r in recipes if r not in preds):
            if recipe.smoothing_k not in features:
                features[recipe.smoothing_k] = _features(x, smoothing, recipe.smoothing_k)
            preds[recipe] = out_of_fold(features[recipe.smoothing_k], y, recipe.c, splits, seed)
            scores[recipe] = macro_f1(y, preds[recipe], weight)

    def best_so_far() -> Recipe:
        return max(scores, key=lambda r: (scores[r], r == incumbent))

    # Many small fits: one BLAS thread each is several times faster than a pool of them.
    with threadpool_limits(1):
        # Coordinate search: every k at the incumbent's C, then every C at the best k (the
        # two interact little, and this halves the fits of the full grid).
        score([r for r in grid if r.c == incumbent.c])
        score([r for r in grid if r.smoothing_k == best_so_far().smoothing_k])
    best = best_so_far()
    base["scores"] = {r.key: round(s, 5) for r, s in scores.items()}
    if best == incumbent:
        return RecipeChoice(recipe=incumbent, reason="kept", **base)
    gain = scores[best] - scores[incumbent]
    stderr = paired_stderr(y, preds[best], preds[incumbent], weight, seed)
    switch = gain > SWITCH_Z * stderr
    return RecipeChoice(recipe=best if switch else incumbent,
                        reason="switched" if switch else "kept", gain=round(gain, 5),
                        stderr=round(stderr, 5), **base)


def fit_head(labels: list[Any], x: np.ndarray, y: Sequence[Any], recipe: Recipe,
             smoothing: NeighbourSmoothing | None, seed: int = 0) -> ClassifierHead:
    """The head a recipe makes: a classifier on x, smoothed with ``recipe.smoothing_k``
    neighbours of ``smoothing``'s references (raw embeddings for k = 0)."""
    use = smoothing.with_k(recipe.smoothing_k) \
        if recipe.smoothing_k and smoothing is not None else None
    with warnings.catch_warnings():  # sklearn's hint when classes outnumber half the rows
        warnings.filterwarnings("ignore", message="The number of unique classes")
        return ClassifierHead.fit(labels, x, list(y), c=recipe.c, seed=seed, smoothing=use)


def fit_chosen(labels: list[Any], x: np.ndarray, y: Sequence[Any], *,
               smoothing: NeighbourSmoothing | None, uniform: np.ndarray | None = None,
               incumbent: Recipe = DEFAULT, c: float | None = None,
               seed: int = 0) -> tuple[ClassifierHead, RecipeChoice]:
    """What every retrain does: ``choose_recipe`` on the rows, then ``fit_head`` with the
    recipe chosen (the product's ``training.service.fit_model`` and ``labelloop simulate``'s
    ``pipeline`` row both call this)."""
    choice = choose_recipe(x, y, smoothing, uniform=uniform, incumbent=incumbent, c=c,
                           seed=seed)
    return fit_head(labels, x, y, choice.recipe, smoothing, seed), choice
