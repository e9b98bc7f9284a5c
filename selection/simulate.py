"""The engine of ``labelloop simulate``: how many labels each strategy needs, on data you own.

A simulation replays active learning on a fully labeled table: hide the labels, start from a
random seed set, let a strategy pick ``batch_size`` items at a time, "label" them from the
hidden column, retrain, and measure macro-F1 on a held-out stratified test split. Every
strategy trains the same classifier (``LogisticRegression(C=10, max_iter=1000)`` on the
embeddings), sees the same split and the same seed set within a repeat, so the curves differ
by selection alone. One extra row, ``pipeline``, is the product as it runs with default
settings: each batch holds a uniform calibration sample (``CALIBRATION_SHARE`` of it, drawn by
``selection.routing.route`` as next-batch draws it) and the rest picked by the "default"
strategy; each retrain chooses its head's recipe out of fold from the labels at hand and fits
it (``prelabel.recipe.fit_chosen``, the call ``training.service.fit_model`` makes), with the
training pool as the smoothing's neighbours (test items are smoothed with pool neighbours
too, never with each other). Only human labels are counted; auto-accept is not simulated (it
adds no human label and the head is not fitted on its rows). Shapes: ``n`` items, ``d``
dimensions, ``c`` classes.
"""

from __future__ import annotations

import json
import re
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labelloop.core.defaults import CALIBRATION_SHARE
from labelloop.core.errors import ValidationError
from labelloop.prelabel.finetune import Tuning
from labelloop.selection.pool import Pool
from labelloop.selection.strategies import get_strategy

PIPELINE = "pipeline"


@dataclass
class Table:
    """A labeled table read by ``load_table``: texts (n,), labels (n,), vectors (n, d) or None."""

    path: Path
    texts: list[str]
    labels: np.ndarray
    vectors: np.ndarray | None = None


def load_table(path: str | Path, text_field: str, label_field: str,
               vectors_field: str | None = None) -> Table:
    """Read a .jsonl, .csv or .parquet file into a ``Table``.

    ``text_field`` may join several fields with "+" ("title+description"); in a headerless
    CSV, fields are 0-based column positions ("1+2" and "0" for AG News).

    Missing fields, empty labels and ragged vectors raise ``ValidationError`` naming the file,
    the field and (for values) the row. Vectors are L2-normalised (strategies compare cosines).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", where=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise ValidationError(f"{path.name}: unsupported file type {suffix!r}; use .jsonl, "
                                  ".csv or .parquet", where=str(path))
    except ValidationError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        raise ValidationError(f"{path.name}: cannot be read as {suffix}: {exc}",
                              where=str(path)) from exc
    text_fields = text_field.split("+")
    wanted = [f for f in (*text_fields, label_field, vectors_field) if f is not None]
    if suffix == ".csv" and all(f.isdigit() for f in wanted) and \
            not set(wanted) <= set(frame.columns):
        # A headerless CSV (AG News): fields are 0-based column positions.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, header=None)
        frame.columns = [str(c) for c in frame.columns]
    for field in (*text_fields, label_field, vectors_field):
        if field is not None and field not in frame.columns:
            raise ValidationError(f"{path.name} has no field {field!r}; fields: "
                                  f"{', '.join(map(str, frame.columns))}",
                                  where=f"{path}:{field}")
    labels = frame[label_field]
    empty = labels.isna() | (labels.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise ValidationError(f"{path.name} row {row}: empty {label_field!r}",
                              where=f"{path}:{row}:{label_field}")
    texts = frame[text_fields].fillna("").astype(str).agg(". ".join, axis=1).tolist() \
        if len(text_fields) > 1 else frame[text_field].fillna("").astype(str).tolist()
    vectors = None
    if vectors_field is not None:
        vectors = _read_vectors(frame[vectors_field].tolist(), path, vectors_field)
    return Table(path=path, texts=texts, labels=labels.to_numpy(), vectors=vectors)


def _read_vectors(values: list, path: Path, field: str) -> np.ndarray:
    dims = {len(v) if hasattr(v, "__len__") else -1 for v in values}
    if len(dims) != 1 or -1 in dims or 0 in dims:
        lengths = [len(v) if hasattr(v, "__len__") else -1 for v in values]
        row = next(i for i, n in enumerate(lengths) if n != lengths[0] or n <= 0)
        raise ValidationError(f"{path.name} row {row}: {field!r} must be a non-empty list of "
                              "numbers of the same length in every row",
                              where=f"{path}:{row}:{field}")
    vectors = np.asarray([np.asarray(v, dtype=np.float32) for v in values], dtype=np.float32)
    if not np.all(np.isfinite(vectors)):
        row = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValidationError(f"{path.name} row {row}: {field!r} has non-finite numbers",
                              where=f"{path}:{row}:{field}")
    return _normalise(vectors)


def _normalise(X: np.ndarray) -> np.ndarray:  # noqa: N803
    X = np.ascontiguousarray(X, dtype=np.float32)  # noqa: N806
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class _Split:
    X_train: np.ndarray  # (n_train, d)
    y_train: np.ndarray  # (n_train,) int
    X_test: np.ndarray  # (n_test, d)
    y_test: np.ndarray  # (n_test,) int
    seed_set: np.ndarray  # (seed_size,) indices into the train rows
    n_classes: int
    train_rows: np.ndarray | None = None  # (n_train,) the train rows' indices into the table
    test_rows: np.ndarray | None = None


def run_simulation(X: np.ndarray, y: np.ndarray, strategies: list[str], seed_size: int,  # noqa: N803
                   batch_size: int, budget: int, test_fraction: float = 0.2, repeats: int = 3,
                   seed: int = 0, progress: Callable[[str], None] | None = None, *,
                   dataset: str = "dataset", pipeline: bool = True,
                   tuning: Tuning | None = None) -> dict:
    """Label-efficiency curves of ``strategies`` (plus "random") on embeddings X with labels y.

    X: (n, d) float32 embeddings; y: (n,) labels of any hashable type. Returns::

        {"dataset", "n_items", "full_data_metric", "metric": "macro_f1",
         "strategies": {name: {"curve": [[labels, mean, std], ...],
                               "labels_to_95pct": int | None, "labels_to_98pct": int | None,
                               "selection_seconds": float}}}

    ``full_data_metric`` is the mean over repeats of macro-F1 of the classifier trained on the
    whole training split; ``labels_to_X`` is the first point of the mean curve at or above X%
    of it. ``selection_seconds`` is time inside ``select`` per simulated run (summed over its
    rounds, averaged over repeats). ``pipeline=True`` adds the "pipeline" row (the product),
    whose entry also holds ``recipes``: per repeat, the recipe each retrain chose. With
    ``tuning`` (the table's texts, ``prelabel.finetune.Tuning``) the pipeline fine-tunes the
    encoder where the product would (its entry then holds ``finetune_checks`` too).
    ``progress`` receives one line per finished (strategy, repeat).
    """
    X, codes, n_classes = _check_inputs(X, y, seed_size, batch_size, budget, test_fraction,
                                        repeats)
    names = _strategy_names(strategies)
    runs = [*((name, False) for name in names)]
    if pipeline:
        runs.append((PIPELINE, True))
    curves: dict[str, list[list[float]]] = {name: [] for name, _ in runs}
    seconds: dict[str, list[float]] = {name: [] for name, _ in runs}
    recipes: list[list[str]] = []
    full_scores = []
    for r in range(repeats):
        split = _split(X, codes, n_classes, test_fraction, seed_size, seed, r)
        full_scores.append(_evaluate(_fit(split.X_train, split.y_train, n_classes), split))
        for name, full_pipeline in runs:
            rng = np.random.default_rng([seed, r, zlib.crc32(name.encode())])
            if full_pipeline:
                curve, spent, chosen = _run_pipeline(split, batch_size, budget, rng, tuning)
                recipes.append(chosen)
            else:
                curve, spent = _run_one(get_strategy(name), split, batch_size, budget, rng)
            curves[name].append(curve)
            seconds[name].append(spent)
            if progress is not None:
                progress(f"{name}: repeat {r + 1}/{repeats}, macro-F1 {curve[-1][1]:.3f} at "
                         f"{int(curve[-1][0])} labels, selection {spent:.2f}s")
    full = float(np.mean(full_scores))
    out: dict[str, dict] = {}
    for name, _ in runs:
        labels = np.array([p[0] for p in curves[name][0]], dtype=int)
        values = np.array([[p[1] for p in c] for c in curves[name]])  # (repeats, points)
        mean, std = values.mean(axis=0), values.std(axis=0)
        out[name] = {
            "curve": [[int(n), float(m), float(s)] for n, m, s in zip(labels, mean, std,
                                                                      strict=True)],
            "labels_to_95pct": _labels_to(labels, mean, 0.95 * full),
            "labels_to_98pct": _labels_to(labels, mean, 0.98 * full),
            "selection_seconds": float(np.mean(seconds[name])),
        }
    if pipeline:
        out[PIPELINE]["recipes"] = recipes
        if tuning is not None:
            out[PIPELINE]["finetune_checks"] = tuning.checks
    return {"dataset": dataset, "n_items": int(len(X)), "full_data_metric": full,
            "metric": "macro_f1", "strategies": out}


def _labels_to(labels: np.ndarray, mean: np.ndarray, goal: float) -> int | None:
    hit = np.flatnonzero(mean >= goal)
    return int(labels[hit[0]]) if hit.size else None


def _strategy_names(strategies: list[str]) -> list[str]:
    names: list[str] = []
    for name in [*strategies, "random"]:
        get_strategy(name)  # unknown names fail before any work, listing the known ones
        key = name.strip().lower()
        if key not in names:
            names.append(key)
    return names


def _check_inputs(X: np.ndarray, y: np.ndarray, seed_size: int, batch_size: int,  # noqa: N803
                  budget: int, test_fraction: float,
                  repeats: int) -> tuple[np.ndarray, np.ndarray, int]:
    X = np.asarray(X)  # noqa: N806
    if X.ndim != 2 or len(X) == 0 or not np.all(np.isfinite(X)):
        raise ValidationError(f"X must be a non-empty finite (n, d) array, got shape {X.shape}",
                              where="X")
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValidationError(f"y must have one label per row of X ({len(X)}), got shape "
                              f"{y.shape}", where="y")
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValidationError("a simulation needs at least two classes", where="y")
    if counts.min() < 2:
        raise ValidationError(f"class {classes[counts.argmin()]!r} has a single item; a "
                              "stratified test split needs at least two per class", where="y")
    if not 0.0 < test_fraction < 1.0:
        raise ValidationError(f"test_fraction must be in (0, 1), got {test_fraction}",
                              where="test_fraction")
    n_train = len(X) - int(np.ceil(test_fraction * len(X)))
    checks = [(seed_size >= 1, "seed_size must be at least 1", "seed_size"),
              (batch_size >= 1, "batch_size must be at least 1", "batch_size"),
              (repeats >= 1, "repeats must be at least 1", "repeats"),
              (budget >= seed_size, "budget must be at least seed_size", "budget"),
              (seed_size < n_train, f"seed_size must be below the {n_train} training items",
               "seed_size")]
    for ok, message, where in checks:
        if not ok:
            raise ValidationError(message, where=where)
    return _normalise(X), codes.astype(np.int64), len(classes)


def _split(X: np.ndarray, codes: np.ndarray, n_classes: int, test_fraction: float,  # noqa: N803
           seed_size: int, seed: int, repeat: int) -> _Split:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(X))
    train, test = train_test_split(idx, test_size=test_fraction, stratify=codes,
                                   random_state=(seed * 1_000_003 + repeat) % 2**32)
    rng = np.random.default_rng([seed, repeat])
    seed_set = rng.choice(len(train), size=seed_size, replace=False)
    return _Split(X[train], codes[train], X[test], codes[test], seed_set, n_classes, train, test)


class _Model:
    """The simulation's classifier; probs are (m, c) over every class, unseen classes 0."""

    def __init__(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> None:  # noqa: N803
        from sklearn.linear_model import LogisticRegression

        self.n_classes = n_classes
        self.classes = np.unique(y)
        self.clf = None
        if len(self.classes) > 1:
            with warnings.catch_warnings():
                # sklearn's "more classes than half the samples" hint: expected with few labels
                warnings.filterwarnings("ignore", message="The number of unique classes")
                self.clf = LogisticRegression(C=10, max_iter=1000).fit(X, y)

    def probs(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        out = np.zeros((len(X), self.n_classes))
        if self.clf is None:
            out[:, self.classes[0]] = 1.0
        else:
            out[:, self.clf.classes_] = self.clf.predict_proba(X)
        return out

    def dropout_head(self, d: int, p: float = 0.2) -> object:
        """The fitted linear model as a torch module with input dropout, for MC-dropout BALD."""
        from labelloop.prelabel.heads import dropout_linear, full_linear

        if self.clf is not None:
            weight, bias = full_linear(self.clf, self.clf.classes_, self.n_classes)
        else:  # one class seen: it always wins
            weight, bias = np.zeros((self.n_classes, d)), np.full(self.n_classes, -30.0)
            bias[self.classes[0]] = 0.0
        return dropout_linear(weight, bias, p)


def _fit(X: np.ndarray, y: np.ndarray, n_classes: int) -> _Model:  # noqa: N803
    return _Model(X, y, n_classes)


def _evaluate(model: _Model | _Head, split: _Split, X_test: np.ndarray | None = None,  # noqa: N803
              ) -> float:
    from sklearn.metrics import f1_score

    pred = model.probs(split.X_test if X_test is None else X_test).argmax(axis=1)
    return float(f1_score(split.y_test, pred, labels=np.arange(split.n_classes),
                          average="macro", zero_division=0))


def _run_one(strategy: object, split: _Split, batch_size: int, budget: int,
             rng: np.random.Generator) -> tuple[list[list[float]], float]:
    """One simulated labeling run -> ([[labels, macro_f1], ...], seconds spent selecting).
    The model trains on raw embeddings; the strategy sees them and its probabilities."""
    n_train = len(split.y_train)
    is_labeled = np.zeros(n_train, dtype=bool)
    is_labeled[split.seed_set] = True
    curve: list[list[float]] = []
    spent = 0.0
    budget = min(budget, n_train)
    while True:
        labeled, unlabeled = np.flatnonzero(is_labeled), np.flatnonzero(~is_labeled)
        model = _fit(split.X_train[labeled], split.y_train[labeled], split.n_classes)
        curve.append([float(len(labeled)), _evaluate(model, split)])
        n = min(batch_size, budget - len(labeled))
        if n <= 0 or unlabeled.size == 0:  # (a budget of every training item ends here)
            return curve, spent
        probs = model.probs(split.X_train[unlabeled])
        pool = Pool(probs=probs, embeddings=split.X_train[unlabeled],
                    labeled_embeddings=split.X_train[labeled],
                    labeled_y=split.y_train[labeled],
                    model=model.dropout_head(split.X_train.shape[1])
                    if getattr(strategy, "needs_model", False) else None)
        start = time.perf_counter()
        picked = strategy.select(pool, n, rng)  # type: ignore[attr-defined]
        spent += time.perf_counter() - start
        is_labeled[unlabeled[picked]] = True


class _Head:
    """A product head (``prelabel.heads.ClassifierHead``, labels 0..c-1) as a ``_Model``."""

    def __init__(self, head: object) -> None:
        self.head = head

    def probs(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.head.predict_proba(X)  # type: ignore[attr-defined]


def _run_pipeline(split: _Split, batch_size: int, budget: int, rng: np.random.Generator,
                  tuning: Tuning | None = None) -> tuple[list[list[float]], float, list[str]]:
    """One run of the product with default settings -> (curve, seconds selecting, the recipe
    each retrain chose). The seed set is a uniform sample, so it counts as calibration rows.

    With ``tuning`` (the table's texts), each retrain where a fine-tuning check is due runs
    it as the product does (``training.finetuning``): the frozen recipe against SetFit on
    held-out labels; where tuning wins, the run goes on with every train and test row
    embedded by the tuned encoder (the recipe shown with "+tuned"), else on the frozen
    vectors, until the next check."""
    from labelloop.prelabel.finetune import check_due
    from labelloop.prelabel.recipe import DEFAULT, fit_chosen
    from labelloop.selection.routing import CALIBRATION, RoutingPolicy, route

    strategy = get_strategy("default")
    no_auto = RoutingPolicy(thresholds=None, critical=np.zeros(0, dtype=int))
    base = current = _Vectors.of(split)
    n_train = len(split.y_train)
    is_labeled = np.zeros(n_train, dtype=bool)
    is_labeled[split.seed_set] = True
    uniform = is_labeled.copy()
    curve: list[list[float]] = []
    chosen: list[str] = []
    recipe, spent, checked_at = DEFAULT, 0.0, None
    budget = min(budget, n_train)
    classes = list(range(split.n_classes))
    while True:
        labeled, unlabeled = np.flatnonzero(is_labeled), np.flatnonzero(~is_labeled)
        y = split.y_train[labeled]
        if tuning is not None and check_due(len(labeled), checked_at, tuning.min_labels):
            head, choice = fit_chosen(classes, base.train[labeled], y, smoothing=base.smoothing,
                                      uniform=uniform[labeled], incumbent=recipe)
            checked_at = len(labeled)
            encoder = tuning.check(split.train_rows[labeled], y,  # type: ignore[index]
                                   _frozen_predict(base, labeled, y, choice.recipe, classes),
                                   c=choice.recipe.c, seed=len(labeled),
                                   uniform=uniform[labeled])
            current = base if encoder is None else _Vectors.embedded(encoder, tuning, split)
        if len(np.unique(y)) < 2:  # a head needs two classes: the simulation's own model
            model: _Model | _Head = _fit(current.train[labeled], y, split.n_classes)
        else:
            head, choice = fit_chosen(classes, current.train[labeled], y,
                                      smoothing=current.smoothing, uniform=uniform[labeled],
                                      incumbent=recipe)
            recipe, model = choice.recipe, _Head(head)
        chosen.append(recipe.key + ("+tuned" if current is not base else ""))
        curve.append([float(len(labeled)), _evaluate(model, split, current.test)])
        n = min(batch_size, budget - len(labeled))
        if n <= 0 or unlabeled.size == 0:
            return curve, spent, chosen
        probs = model.probs(current.train[unlabeled])
        start = time.perf_counter()
        n_calibration = min(n - 1, int(round(CALIBRATION_SHARE * n)))
        routes = route(probs, no_auto, rng, n_calibration=n_calibration)
        calibration = np.flatnonzero(routes.reason == CALIBRATION)
        human = np.flatnonzero(routes.reason != CALIBRATION)
        pool = Pool(probs=probs[human], embeddings=current.train[unlabeled[human]])
        picked = human[strategy.select(pool, min(n - calibration.size, human.size), rng)]
        spent += time.perf_counter() - start
        is_labeled[unlabeled[picked]] = True
        is_labeled[unlabeled[calibration]] = True
        uniform[unlabeled[calibration]] = True


@dataclass(frozen=True)
class _Vectors:
    """One encoder's vectors of a split's train and test rows, and the smoothing index over
    the train rows (the pool the product smooths with)."""

    train: np.ndarray
    test: np.ndarray
    smoothing: object

    @classmethod
    def of(cls, split: _Split, train: np.ndarray | None = None,
           test: np.ndarray | None = None) -> _Vectors:
        from labelloop.prelabel.recipe import DEFAULT
        from labelloop.prelabel.smoothing import NeighbourSmoothing

        train = split.X_train if train is None else train
        test = split.X_test if test is None else test
        smoothing = NeighbourSmoothing(train, k=DEFAULT.smoothing_k) \
            if len(train) > 2 * DEFAULT.smoothing_k else None
        return cls(train, test, smoothing)

    @classmethod
    def embedded(cls, encoder: object, tuning: Tuning, split: _Split) -> _Vectors:
        def encode(rows: np.ndarray) -> np.ndarray:
            return _normalise(encoder.encode([tuning.texts[i] for i in rows]))  # type: ignore[attr-defined]
        return cls.of(split, encode(split.train_rows), encode(split.test_rows))  # type: ignore[arg-type]


def _frozen_predict(base: _Vectors, labeled: np.ndarray, y: np.ndarray, recipe: object,
                    classes: list[int]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The frozen side of a fine-tuning check: ``recipe`` on the frozen vectors of the
    labeled rows ``fit_idx``, predicting the rows ``held`` (positions in ``labeled``)."""
    from labelloop.prelabel.recipe import fit_head

    def predict(fit_idx: np.ndarray, held: np.ndarray) -> np.ndarray:
        head = fit_head(classes, base.train[labeled[fit_idx]], y[fit_idx], recipe,  # type: ignore[arg-type]
                        base.smoothing)  # type: ignore[arg-type]
        return head.predict_proba(base.train[labeled[held]]).argmax(axis=1)
    return predict


def plot_curves(results: dict, png_path: str | Path) -> Path:
    """One line per strategy (mean, with a +-1 std band) and the 95%/98% goal lines -> PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, row in results["strategies"].items():
        curve = np.asarray(row["curve"], dtype=float)
        style = "--" if name == PIPELINE else "-"
        (line,) = ax.plot(curve[:, 0], curve[:, 1], style, label=name, linewidth=1.6)
        ax.fill_between(curve[:, 0], curve[:, 1] - curve[:, 2], curve[:, 1] + curve[:, 2],
                        color=line.get_color(), alpha=0.15)
    full = results["full_data_metric"]
    for share, dash in ((0.95, ":"), (0.98, "-.")):
        ax.axhline(share * full, color="grey", linestyle=dash, linewidth=1,
                   label=f"{share:.0%} of full data ({share * full:.3f})")
    ax.set_xlabel("human labels")
    ax.set_ylabel(results.get("metric", "macro_f1"))
    ax.set_title(f"{results['dataset']}: {results['n_items']} items, full-data "
                 f"{results.get('metric', 'macro_f1')} {full:.3f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(png_path)
    return png_path


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def log_to_mlflow(results: dict, tracking_uri: str, experiment: str = "labelloop-simulate",
                  png_path: str | Path | None = None, *, artifact_root: Path) -> str:
    """Log one MLflow run: params, labels_to_* and final metric per strategy, JSON and PNG.

    The PNG is drawn with ``plot_curves`` when ``png_path`` is not given. Returns the run id.
    Uses an ``MlflowClient`` for ``tracking_uri``, leaving mlflow's global state alone. A new
    experiment keeps its artefacts under ``artifact_root`` (MLflow's default would be
    ./mlruns in whatever folder the command runs from).
    """
    import tempfile

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(
            experiment, artifact_location=(artifact_root / experiment).resolve().as_uri())
    else:
        exp_id = found.experiment_id
    run = client.create_run(exp_id, run_name=f"simulate {results['dataset']}")
    run_id = run.info.run_id
    any_curve = np.asarray(next(iter(results["strategies"].values()))["curve"])
    labels = any_curve[:, 0].astype(int)
    params = {"dataset": results["dataset"], "n_items": results["n_items"],
              "metric": results["metric"], "strategies": ",".join(results["strategies"]),
              "seed_size": int(labels[0]), "budget": int(labels[-1]),
              "batch_size": int(labels[1] - labels[0]) if len(labels) > 1 else 0,
              "classifier": "LogisticRegression(C=10, max_iter=1000)"}
    for key, value in params.items():
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "full_data_metric", float(results["full_data_metric"]))
    for name, row in results["strategies"].items():
        key = _metric_key(name)
        client.log_metric(run_id, f"final_metric/{key}", row["curve"][-1][1])
        client.log_metric(run_id, f"selection_seconds/{key}", row["selection_seconds"])
        for goal in ("labels_to_95pct", "labels_to_98pct"):
            if row[goal] is None:
                client.set_tag(run_id, f"{goal}/{key}", f"not reached by {labels[-1]}")
            else:
                client.log_metric(run_id, f"{goal}/{key}", row[goal])
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "simulation.json"
        json_path.write_text(json.dumps(results, indent=2))
        client.log_artifact(run_id, str(json_path))
        png = Path(png_path) if png_path else plot_curves(results, Path(tmp) / "curves.png")
        client.log_artifact(run_id, str(png))
    client.set_terminated(run_id)
    return run_id
