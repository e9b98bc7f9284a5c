"""Retrain the pre-labeler on a dataset version, evaluate it, log everything to MLflow.

The new model becomes the project's active pre-labeler for the next round (registry alias
``prelabeler``), or, trained with ``promote=False``, waits as the ``candidate`` until
``promote_model`` makes it live.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core import failpoints
from labelloop.core.errors import ValidationError
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.prelabel.cache import embed_items, vectors_by_id
from labelloop.prelabel.calibration import confident_mask
from labelloop.prelabel.encoders import Encoder
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.recipe import DEFAULT, Recipe, RecipeChoice, fit_chosen, fit_head
from labelloop.prelabel.service import encoder_for
from labelloop.prelabel.smoothing import NeighbourSmoothing
from labelloop.selection.calibration import calibrate_for_model, estimate_for_model
from labelloop.selection.routing import CALIBRATION
from labelloop.selection.service import unlabeled_pool
from labelloop.store.models import DatasetVersion, Item, ModelVersion, Project
from labelloop.store.pages import id_array
from labelloop.training import finetuning
from labelloop.training.metrics import confusion_counts, evaluate_predictions
from labelloop.training.smoothing_index import smoothing_for
from labelloop.training.tracking import (
    CANDIDATE,
    JOB_TAG,
    PROJECT_TAG,
    experiment_for,
    log_confusion_matrix,
    log_data_diff,
    log_rows_input,
    log_version_input,
    mlflow_client,
    per_class_metrics,
    point_prelabeler,
    quiet_mlflow,
    registered_name,
    set_alias,
)
from labelloop.versions.lineage import diff_versions
from labelloop.versions.service import export_version, version_records


def _vectors(session: Session, records: list[dict[str, Any]], settings: Settings,
             progress: Progress, what: str, encoder: Encoder) -> np.ndarray:
    items = [session.get(Item, r["item_id"]) for r in records]
    return embed_items(session, items, encoder, batch_size=settings.embed_batch_size,
                       progress=progress(f"embed {what}", len(items)))


def training_rows(session: Session, project: Project, settings: Settings,
                  train: DatasetVersion, evaluation: DatasetVersion | None = None,
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the training version's rows, those the head fits on), once the pair is checked:
    ``ValidationError`` for a version of another project, an evaluation version to train
    on, an evaluation version that overlaps the training data, or fewer than two labels."""
    for v in (train, evaluation):
        if v is not None and v.project_id != project.id:
            raise ValidationError(f"dataset version {v.id} belongs to another project",
                                  where="version")
    if train.split == "eval":
        raise ValidationError(f"version {train.name} is an evaluation version; train on a "
                              "train version", where="train_version")
    version_rows = version_records(session, train)
    if evaluation is not None:
        if evaluation.id == train.id:
            raise ValidationError("the evaluation version is the training version",
                                  where="eval_version")
        shared = {r["item_id"] for r in version_rows} & {
            r["item_id"] for r in version_records(session, evaluation)}
        if shared:
            raise ValidationError(f"evaluation version {evaluation.name} shares {len(shared)} "
                                  f"items with training version {train.name} (item "
                                  f"{min(shared)} first): its figures would flatter the "
                                  "model", where="eval_version")
    # Auto-accepted rows are the model's own answers: refitting on them teaches nothing new
    # and tilts the class priors towards the easy classes they come from (about 1 point of
    # macro-F1 on BANKING77), so by default the pre-labeler fits on the other rows. They
    # stay in the version for whoever trains downstream.
    records = version_rows if settings.train_on_auto_accepted else \
        [r for r in version_rows if r["lineage"].get("origin") != "auto"]
    if len({r["label"] for r in records}) < 2:
        raise ValidationError(f"version {train.name} has fewer than two distinct labels"
                              f"{'' if records is version_rows else ' besides auto-accepted'}"
                              "; cannot train a classifier", where="train_version")
    return version_rows, records


def train_model(session: Session, project: Project, settings: Settings, *,
                train: DatasetVersion, evaluation: DatasetVersion | None = None,
                c: float | None = None, seed: int = 0, progress: Progress = silent,
                job_id: int | None = None,
                on_run: Callable[[str], None] | None = None,
                promote: bool = True) -> ModelVersion:
    """Fit a classifier head on ``train``'s embeddings; evaluate on ``evaluation``; log and
    register in MLflow; with ``promote``, make it the active pre-labeler (else it stays the
    registry's ``candidate``). ``c`` fixes the classifier's C (None: chosen with the recipe,
    see ``fit_model``)."""
    model = fit_model(session, project, settings, train=train, evaluation=evaluation, c=c,
                      seed=seed, progress=progress, job_id=job_id, on_run=on_run)
    return install_model(session, project, model, promote=promote, settings=settings)


def install_model(session: Session, project: Project, model: ModelVersion, *,
                  promote: bool = True, settings: Settings | None = None) -> ModelVersion:
    """Store the row of a model ``fit_model`` made; with ``promote``, make it the active
    pre-labeler and move the registry alias ``prelabeler`` to it (``_make_active``; without
    ``settings`` the alias is left as it is). Not promoted, it keeps the ``candidate``
    alias ``fit_model`` gave it."""
    session.add(model)
    session.flush()
    if promote:
        _make_active(session, project, model, settings)
    return model


def promote_model(session: Session, project: Project, model: ModelVersion,
                  settings: Settings) -> ModelVersion:
    """Make ``model``, trained earlier for ``project``, its active pre-labeler and move the
    registry alias ``prelabeler`` to it. ``ValidationError`` for a model of another project
    or a zero-shot model (it has no head file and no registry version)."""
    if model.project_id != project.id:
        raise ValidationError(f"model {model.id} belongs to another project", where="model")
    if model.kind == "zero-shot":
        raise ValidationError(f"model {model.id} ({model.name}) is zero-shot; only a trained "
                              "classifier can be promoted", where="model")
    if not model.artifact_path:
        raise ValidationError(f"model {model.id} ({model.name}) has no trained head",
                              where="model")
    _make_active(session, project, model, settings)
    return model


def _make_active(session: Session, project: Project, model: ModelVersion,
                 settings: Settings | None) -> None:
    """The database first, MLflow second: ``active_model_id`` is flushed, then the alias
    moves (``point_prelabeler``). An alias that fails to move raises before the caller's
    unit of work commits, so it rolls back whole and the database never names a live model
    the registry does not. If instead the commit fails after the alias moved, ``prelabeler``
    names a version the database did not make live until the next promotion; a new model's
    run is then an orphan, and ``training.orphans.reconcile`` deletes its registry version
    (and with it the alias)."""
    project.active_model_id = model.id
    session.flush()
    if settings is not None and model.registered_name and model.registered_version:
        point_prelabeler(settings.tracking_uri, model.registered_name,
                         model.registered_version)


def fit_model(session: Session, project: Project, settings: Settings, *,
              train: DatasetVersion, evaluation: DatasetVersion | None = None,
              c: float | None = None, seed: int = 0, progress: Progress = silent,
              job_id: int | None = None,
              on_run: Callable[[str], None] | None = None) -> ModelVersion:
    """Everything of ``train_model`` but storing the row (``install_model``): it reads, and
    so runs in a read-only unit of work, which vectors it computes are cached beside
    (SQLite's writer is not held while it fits). Returns the model, not yet stored.

    The head's recipe (smoothing k and C) is chosen out of fold on the rows it fits
    (``prelabel.recipe.fit_chosen``, with the uniform calibration rows weighted up and the
    live model's recipe as the incumbent), unless ``settings.recipe`` is "fixed"; ``c``
    fixes C either way. The choice and its out-of-fold figures go to the model's metrics
    (``recipe``) and its MLflow run (``recipe.json``, params and metrics).

    The encoder is the live model's (the base encoder, or a tuned version of it) unless a
    fine-tuning check is due (``training.finetuning``): then the frozen recipe above is
    scored against a SetFit tuning on held-out labels, and where tuning wins the model reads
    the new tuned encoder, whose vectors of the whole project are computed here, before the
    model exists (``metrics.finetune``, MLflow ``finetune.json``)."""
    version_rows, records = training_rows(session, project, settings, train, evaluation)
    start = time.perf_counter()
    labels = [r["label"] for r in records]
    uniform = np.array([r["lineage"].get("reason") == CALIBRATION for r in records])
    incumbent = _incumbent(session, project, settings, c)
    fitter = functools.partial(_fit_recipe, session, project, settings, records, incumbent,
                               c, seed, progress, train.name)
    base = encoder_for(settings)
    plan = finetuning.standing(settings, _live(session, project), base.key)
    fitted: Fitted | None = None
    if finetuning.due(settings, plan, len(records)):
        fitted = fitter(base)  # the check's frozen side; the model too, unless tuning wins
        x, smoothing, _, choice = fitted
        plan = finetuning.check(
            settings, project.id, base.key,
            [session.get(Item, r["item_id"]).text for r in records], labels,
            frozen_predict=_predictor(project, x, labels, choice.recipe, smoothing, seed),
            c=choice.recipe.c, seed=seed, uniform=uniform,
            progress=progress("fine-tune the encoder", settings.finetune_steps))
    encoder = tuned.load(settings, plan.key) if tuned.is_tuned(plan.key) else base
    if plan.made:  # a new encoder version: the pool's vectors before the model goes live
        _embed_project(session, project, settings, encoder, progress)
    if fitted is None or plan.made:
        fitted = fitter(encoder)
    x, smoothing, head, choice = fitted
    c = choice.recipe.c  # out-of-fold models below train as the head did
    # The unlabeled pool's vectors, read at most once (self-training and calibration share them).
    pool_vectors: PoolVectors = functools.cache(
        lambda: _pool_vectors(session, project, settings, encoder))
    pseudo: Pseudo | None = None
    if settings.self_training:
        head, pseudo = _self_train(project, settings, records, x, head, c, seed, pool_vectors)
    fit_seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"n_train": len(records), "fit_seconds": fit_seconds,
                               "n_version_rows": len(version_rows),
                               "smoothing_k": head.smoothing.k if head.smoothing else 0,
                               "recipe": choice.to_json()}
    if plan.state:
        metrics["finetune"] = plan.state
    if pseudo is not None:
        metrics["self_training"] = pseudo.summary()
    auto = _calibrate_auto_accept(project, records, x, head, c, seed, pool_vectors,
                                  pseudo=pseudo)
    if auto is not None:
        metrics["auto_accept"] = auto
    data = RunData(train=train, version_rows=version_rows, fitted=records,
                   evaluation=evaluation, diff=_data_diff(session, project, train))
    if evaluation is not None:
        data.eval_records = version_records(session, evaluation)
        xe = _vectors(session, data.eval_records, settings, progress, evaluation.name, encoder)
        data.eval_pred = [project.labels[k] for k in head.predict_proba(xe).argmax(axis=1)]
        metrics |= evaluate_predictions([r["label"] for r in data.eval_records],
                                        data.eval_pred, list(project.labels))

    # Killed at any point below, nothing half-made stays once reconcile() runs: the run,
    # the model file and the registry version exist before the row that names them, are
    # all named by the run's id (never reused, so nothing is overwritten), and a run
    # without a row is an orphan that reconcile() ends and removes with its file and version.
    model = ModelVersion(project_id=project.id, name=f"classifier/{train.name}",
                         kind="classifier", encoder=encoder.key,
                         train_version_id=train.id,
                         eval_version_id=evaluation.id if evaluation else None,
                         metrics=metrics)
    _log_run(model, project, settings, head, data, metrics, c, pseudo, job_id=job_id,
             on_run=on_run)
    failpoints.hit("train.run-ended")
    return model


Fitted = tuple[np.ndarray, NeighbourSmoothing | None, ClassifierHead, RecipeChoice]


def _fit_recipe(session: Session, project: Project, settings: Settings,
                records: list[dict[str, Any]], incumbent: Recipe, c: float | None, seed: int,
                progress: Progress, what: str, encoder: Encoder) -> Fitted:
    """The rows' vectors under ``encoder``, the smoothing index over its pool vectors, and
    the head: the recipe chosen out of fold (``fit_chosen``), or the incumbent when
    ``settings.recipe`` is "fixed"."""
    x = _vectors(session, records, settings, progress, what, encoder)
    smoothing = smoothing_for(session, project, settings, encoder, seed)
    labels = [r["label"] for r in records]
    uniform = np.array([r["lineage"].get("reason") == CALIBRATION for r in records])
    if settings.recipe == "auto":
        head, choice = fit_chosen(list(project.labels), x, labels, smoothing=smoothing,
                                  uniform=uniform, incumbent=incumbent, c=c, seed=seed)
    else:
        choice = RecipeChoice(recipe=incumbent, incumbent=incumbent, reason="fixed",
                              n_labels=len(labels), n_uniform=int(uniform.sum()))
        head = fit_head(list(project.labels), x, labels, incumbent, smoothing, seed)
    return x, smoothing, head, choice


def _predictor(project: Project, x: np.ndarray, labels: list[str], recipe: Recipe,
               smoothing: NeighbourSmoothing | None, seed: int,
               ) -> Callable[[np.ndarray, np.ndarray], list[str]]:
    """``(fit_idx, held) -> labels``: ``recipe`` fitted on the rows ``fit_idx`` of (x,
    labels), predicting the rows ``held`` (the frozen side of the fine-tuning check)."""
    def predict(fit_idx: np.ndarray, held: np.ndarray) -> list[str]:
        head = fit_head(list(project.labels), x[fit_idx], [labels[i] for i in fit_idx],
                        recipe, smoothing, seed)
        return [project.labels[k] for k in head.predict_proba(x[held]).argmax(axis=1)]
    return predict


def _live(session: Session, project: Project) -> ModelVersion | None:
    return session.get(ModelVersion, project.active_model_id) \
        if project.active_model_id else None


EMBED_CHUNK = 2_000  # vectors per cached write while a new encoder embeds the project


def _embed_project(session: Session, project: Project, settings: Settings, encoder: Encoder,
                   progress: Progress) -> None:
    """Every pool, gold and evaluation item's vector under ``encoder`` (a new tuned
    version), cached chunk by chunk: the model that reads them goes live with its pool
    ready to pre-label, and until then the live model serves from its own vectors."""
    ids = id_array(session, select(Item.id).where(
        Item.project_id == project.id, Item.split.in_(("pool", "gold", "eval"))))
    tick = progress(f"embed the project ({encoder.key})", len(ids))
    for start in range(0, len(ids), EMBED_CHUNK):
        vectors_by_id(session, ids[start:start + EMBED_CHUNK].tolist(), encoder,
                      batch_size=settings.embed_batch_size)
        tick(len(ids[start:start + EMBED_CHUNK]))


def model_dir(settings: Settings, project: Project) -> Path:
    return settings.home.resolve() / "models" / f"project-{project.id}"


def _save_head(head: ClassifierHead, settings: Settings, project: Project, run_id: str) -> Path:
    """The head's file, named by its MLflow run, written whole or not at all."""
    path = model_dir(settings, project) / f"model-{run_id}.joblib"
    partial = head.save(path.with_name(f".{path.name}.{uuid.uuid4().hex}.part"))
    os.replace(partial, path)
    return path


@dataclass
class Pseudo:
    """Pool items the model labeled for itself (self-training): never counted as human."""

    item_ids: list[int]
    x: np.ndarray  # (n_pseudo, d)
    labels: list[str]
    temperature: float
    threshold: float

    def summary(self) -> dict[str, Any]:
        return {"n_pseudo": len(self.labels), "threshold": self.threshold,
                "temperature": self.temperature, "digest": self.digest()}

    def digest(self) -> str:
        h = hashlib.sha256()
        for item_id, label in sorted(zip(self.item_ids, self.labels, strict=True)):
            h.update(f"{item_id}\t{label}\n".encode())
        return h.hexdigest()


def _pool_vectors(session: Session, project: Project, settings: Settings,
                  encoder: Encoder) -> tuple[list[Item], np.ndarray]:
    pool = unlabeled_pool(session, project)
    if len(pool) > MAX_POOL_SAMPLE:  # estimates and pseudo-labels need a sample, not all
        rng = np.random.default_rng(0)
        pool = [pool[i] for i in np.sort(rng.choice(len(pool), MAX_POOL_SAMPLE, replace=False))]
    return pool, embed_items(session, pool, encoder, batch_size=settings.embed_batch_size)


PoolVectors = Callable[[], tuple[list[Item], np.ndarray]]


def _incumbent(session: Session, project: Project, settings: Settings,
               c: float | None) -> Recipe:
    """The recipe a retrain starts from: the live model's, else ``settings.smoothing_k``
    with C 10 (``c`` when given); "fixed" recipes are always the settings'."""
    start = Recipe(settings.smoothing_k, float(c) if c is not None else DEFAULT.c)
    if settings.recipe == "fixed":
        return start
    live = session.get(ModelVersion, project.active_model_id) if project.active_model_id \
        else None
    key = ((live.metrics or {}).get("recipe") or {}).get("recipe") if live else None
    return Recipe.from_key(key) if key else start


def _out_of_fold(project: Project, head: ClassifierHead, x: np.ndarray, labels: list[str],
                 c: float, seed: int, folds: int,
                 pseudo: Pseudo | None = None) -> np.ndarray | None:
    """(n, n_labels) out-of-fold probabilities of rows (x, labels) from fold models that read
    what ``head`` reads (its smoothed features, worked out once here, not once per fold);
    every fold model also trains on ``pseudo``'s rows when given. None when a fold would see
    a single label."""
    from sklearn.model_selection import KFold

    z = head.features(x)
    extra = (head.features(pseudo.x), pseudo.labels) if pseudo is not None else None
    oof = np.zeros((len(labels), len(project.labels)))
    for fit_idx, held in KFold(folds, shuffle=True, random_state=seed).split(z):
        fit_z, fit_y = z[fit_idx], [labels[i] for i in fit_idx]
        if len(set(fit_y)) < 2:
            return None
        if extra is not None:
            fit_z, fit_y = np.vstack([fit_z, extra[0]]), fit_y + extra[1]
        fold = ClassifierHead.fit(list(project.labels), fit_z, fit_y, c=c, seed=seed)
        oof[held] = fold.predict_proba(z[held])
    return oof


def _self_train(project: Project, settings: Settings, records: list[dict[str, Any]],
                x: np.ndarray, head: ClassifierHead, c: float, seed: int,
                pool_vectors: PoolVectors, folds: int = 3,
                ) -> tuple[ClassifierHead, Pseudo | None]:
    """Refit on the version's rows plus pool items the model labels with calibrated confidence
    >= ``settings.pseudo_label_threshold`` (temperature on ``folds``-fold out-of-fold
    predictions of the version's rows). Returns the new head and the pseudo-labels."""
    labels = [r["label"] for r in records]
    pool, xp = pool_vectors()
    if not pool or len(records) < 2 * folds:
        return head, None
    index = {lb: i for i, lb in enumerate(project.labels)}
    oof = _out_of_fold(project, head, x, labels, c, seed, folds)
    if oof is None:
        return head, None
    probs = head.predict_proba(xp)
    sure, temperature = confident_mask(oof, np.array([index[lb] for lb in labels]), probs,
                                       settings.pseudo_label_threshold)
    if not sure.any():
        return head, None
    pseudo = Pseudo(item_ids=[pool[i].id for i in np.flatnonzero(sure)], x=xp[sure],
                    labels=[project.labels[k] for k in probs[sure].argmax(axis=1)],
                    temperature=temperature, threshold=settings.pseudo_label_threshold)
    head = ClassifierHead.fit(list(project.labels), np.vstack([x, pseudo.x]),
                              labels + pseudo.labels, c=c, seed=seed, smoothing=head.smoothing)
    return head, pseudo


HUMAN_ORIGINS = ("human", "reviewed", "given")
# Out-of-fold models for auto-accept calibration: with 10 folds each trains on 90% of the
# rows, close to the final model it stands in for (5 folds: 80%, a visibly weaker model).
# Measured on BANKING77 at 1,000 labels, 14 runs: 49.6% of non-critical items accepted at a
# true 0.985 against 45.2% at 0.987 with 5 folds (benchmarks/auto_accept.py).
CALIBRATION_FOLDS = 10
MIN_CALIBRATION = 50  # random calibration rows needed before the pool estimate is trusted
MAX_POOL_SAMPLE = 200_000  # the pool estimate is a mean: a uniform sample of this size will do


def _calibrate_auto_accept(project: Project, records: list[dict[str, Any]], x: np.ndarray,
                           head: ClassifierHead, c: float, seed: int,
                           pool_vectors: PoolVectors, folds: int = CALIBRATION_FOLDS,
                           pseudo: Pseudo | None = None) -> dict[str, Any] | None:
    """Auto-accept thresholds from out-of-fold predictions on human-verified rows only
    (auto-accepted rows would grade the model with its own answers).

    With at least ``MIN_CALIBRATION`` rows from the random calibration sample (lineage reason
    "calibration"), a temperature and a label-noise rate are fitted on their out-of-fold
    predictions, and on bootstrap resamples of them, and the thresholds are the lowest whose
    accepted pool items have a one-sided 90% lower bound on accuracy at the target
    (``selection.auto_accept.pool_estimate``, whatever the head); the calibration rows they
    accept are stored beside them. With fewer, every human row
    counts and thresholds must pass a Clopper-Pearson lower bound on them: uncertainty-picked
    rows are harder than the pool, so this is safe and strict (often "never").

    With self-training, every fold model is trained the way the final one was (its rows plus
    the pseudo-labels), so the out-of-fold confidence is that of the model that routes.
    """
    human = np.array([r["lineage"].get("origin") in HUMAN_ORIGINS for r in records])
    if human.sum() < 50:
        return None
    kept = [r for r, h in zip(records, human, strict=True) if h]
    labels = [r["label"] for r in kept]
    index = {lb: i for i, lb in enumerate(project.labels)}
    y = np.array([index[lb] for lb in labels])
    oof = _out_of_fold(project, head, x[human], labels, c, seed, folds, pseudo)
    if oof is None:
        return None
    random_rows = np.array([r["lineage"].get("reason") == CALIBRATION for r in kept])
    if random_rows.sum() < MIN_CALIBRATION:
        return calibrate_for_model(oof, y, project)
    pool, xp = pool_vectors()
    if not pool:
        return calibrate_for_model(oof, y, project)
    pool_probs = head.predict_proba(xp)
    return estimate_for_model(pool_probs, oof[random_rows], y[random_rows], project)


@dataclass
class RunData:
    """What a training read and predicted, as its MLflow run records it."""

    train: DatasetVersion
    version_rows: list[dict[str, Any]]  # all of the training version's rows
    fitted: list[dict[str, Any]]  # those the head was fitted on (``training_rows``)
    evaluation: DatasetVersion | None = None
    eval_records: list[dict[str, Any]] = field(default_factory=list)
    eval_pred: list[str] = field(default_factory=list)  # the head's label per eval record
    diff: dict[str, Any] | None = None  # ``_data_diff``

    def left_out(self) -> list[dict[str, Any]]:
        """The version's auto-accepted rows the head was not fitted on."""
        fitted = {r["item_id"] for r in self.fitted}
        return [r for r in self.version_rows if r["item_id"] not in fitted
                and r["lineage"].get("origin") == "auto"]


def _data_diff(session: Session, project: Project, train: DatasetVersion,
               ) -> dict[str, Any] | None:
    """What changed in the training data since the project's live model (its active model at
    fit time): ``versions.lineage.diff_versions`` from that model's training version to
    ``train``, with the model named under ``previous_model``. None when the live model has
    no training version (none yet, or zero-shot)."""
    live = session.get(ModelVersion, project.active_model_id) if project.active_model_id \
        else None
    old = session.get(DatasetVersion, live.train_version_id) \
        if live is not None and live.train_version_id is not None else None
    if live is None or old is None:
        return None
    return diff_versions(session, old, train) | {"previous_model": {
        "id": live.id, "name": live.name, "mlflow_run_id": live.mlflow_run_id,
        "registered_version": live.registered_version}}


def _log_run(model: ModelVersion, project: Project, settings: Settings, head: ClassifierHead,
             data: RunData, metrics: dict[str, Any], c: float, pseudo: Pseudo | None = None,
             job_id: int | None = None, on_run: Callable[[str], None] | None = None) -> None:
    """The MLflow run, the head's file (named by the run) and the registry version, which
    gets the alias ``candidate`` at once (``install_model`` moves ``prelabeler`` when it
    promotes); fills ``model``'s run, file and registry fields. ``on_run(run_id)`` is told
    the run's id as soon as it exists (a job notes it, for ``training.orphans``)."""
    train, evaluation = data.train, data.evaluation
    mlflow = mlflow_client(settings.tracking_uri, settings.artifact_root)
    experiment_for(mlflow, project, settings.artifact_root)
    with quiet_mlflow(), mlflow.start_run(run_name=f"{project.name}-{train.name}",
                                          tags={PROJECT_TAG: project.name,
                                                JOB_TAG: str(job_id or "")}) as run:
        if on_run is not None:
            on_run(run.info.run_id)
        failpoints.hit("train.run-started")
        model.artifact_path = str(_save_head(head, settings, project, run.info.run_id))
        failpoints.hit("train.file-written")
        mlflow.log_params({"encoder": model.encoder, "head": "logistic-regression", "C": c,
                           "neighbour_smoothing_k": head.smoothing.k if head.smoothing else 0,
                           "n_train": metrics["n_train"],
                           "n_version_rows": len(data.version_rows),
                           "fit_on_auto_accepted": settings.train_on_auto_accepted,
                           "train_version": train.name,
                           "eval_version": evaluation.name if evaluation else "none"})
        _log_recipe(mlflow, metrics["recipe"])
        if metrics.get("finetune"):
            _log_finetune(mlflow, metrics["finetune"])
        mlflow.set_tags({"labelloop.train_version_id": str(train.id),
                         "labelloop.train_digest": train.digest,
                         "labelloop.eval_version_id": str(evaluation.id) if evaluation else "",
                         "labelloop.eval_digest": evaluation.digest if evaluation else ""})
        _log_inputs(mlflow, project, settings, data)
        if evaluation is not None:
            _log_evaluation(mlflow, project, data, metrics)
        if data.diff is not None:
            log_data_diff(mlflow, data.diff)
        if pseudo is not None:
            _log_pseudo(mlflow, project, settings, pseudo)
        # Naming the requirement skips MLflow's inference, which imports the model's modules
        # in a subprocess (tens of seconds per run).
        info = mlflow.sklearn.log_model(
            head.sklearn_model(), name="model", registered_model_name=registered_name(project),
            skops_trusted_types=([f"{NeighbourSmoothing.__module__}.NeighbourSmoothing"]
                                 if head.smoothing else None),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        failpoints.hit("train.registered")
        model.mlflow_run_id = run.info.run_id
        model.registered_name = registered_name(project)
        model.registered_version = str(getattr(info, "registered_model_version", "") or "")
        if model.registered_version:
            set_alias(settings.tracking_uri, model.registered_name, CANDIDATE,
                      model.registered_version)


def _log_recipe(mlflow, recipe: dict[str, Any]) -> None:  # noqa: ANN001
    """The recipe chosen (params ``recipe``, ``recipe_reason``), each candidate's out-of-fold
    macro-F1 (metrics ``recipe_oof_macro_f1/<key>``) and the whole choice (``recipe.json``)."""
    mlflow.log_params({"recipe": recipe["recipe"], "recipe_reason": recipe["reason"],
                       "recipe_incumbent": recipe["incumbent"]})
    if recipe["scores"]:
        mlflow.log_metrics({f"recipe_oof_macro_f1/{key}": value
                            for key, value in recipe["scores"].items()})
    mlflow.log_dict(recipe, "recipe.json")


def _log_finetune(mlflow, state: dict[str, Any]) -> None:  # noqa: ANN001
    """The fine-tuning check, when this retrain ran one: param ``finetune`` (tuned or
    frozen), the held-out macro-F1 of both sides, and the whole state (``finetune.json``)."""
    if state.get("checked"):
        mlflow.log_params({"finetune": "tuned" if tuned.is_tuned(state["encoder"])
                           else "frozen", "finetune_steps": state.get("steps")})
        mlflow.log_metrics({"finetune_frozen_macro_f1": state["frozen_macro_f1"],
                            "finetune_tuned_macro_f1": state["tuned_macro_f1"],
                            "finetune_seconds": state["seconds"]})
    mlflow.log_dict(state, "finetune.json")


def _log_inputs(mlflow, project: Project, settings: Settings,  # noqa: ANN001
                data: RunData) -> None:
    """The run's dataset inputs, each with as many rows as the model used: "training" (the
    rows fitted on), "auto-accepted" (the version's auto-accepted rows, when left out of the
    fit), "evaluation" (the rows evaluated on). Their source is the version's Parquet export."""
    train_source = _exported(settings, project, data.train)
    digest = log_version_input(mlflow, project, data.train, data.fitted, "training",
                               train_source)
    mlflow.set_tag("labelloop.fitted_digest", digest)
    left_out = data.left_out()
    if left_out:
        log_version_input(mlflow, project, data.train, left_out, "auto-accepted",
                          train_source)
    if data.evaluation is not None:
        log_version_input(mlflow, project, data.evaluation, data.eval_records, "evaluation",
                          _exported(settings, project, data.evaluation))


def _log_evaluation(mlflow, project: Project, data: RunData,  # noqa: ANN001
                    metrics: dict[str, Any]) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, ``evaluation.json`` and
    the confusion matrix (``confusion_matrix.png`` and ``.json``) over all project labels."""
    mlflow.log_metrics({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                        **per_class_metrics(metrics["per_class"])})
    mlflow.log_dict(metrics, "evaluation.json")
    labels = list(project.labels)
    log_confusion_matrix(mlflow, labels, confusion_counts(
        [r["label"] for r in data.eval_records], data.eval_pred, labels))


def _log_pseudo(mlflow, project: Project, settings: Settings,  # noqa: ANN001
                pseudo: Pseudo) -> None:
    """Self-training: the pool items the model labeled for itself are an input too, their
    source a Parquet file named by their digest."""
    mlflow.log_params({"self_training": True, "n_pseudo": len(pseudo.labels),
                       "pseudo_label_threshold": pseudo.threshold})
    digest = pseudo.digest()
    mlflow.set_tag("labelloop.pseudo_digest", digest)
    frame = pd.DataFrame({"item_id": pseudo.item_ids, "label": pseudo.labels})
    path = settings.export_dir / f"project-{project.id}" / f"pseudo-{digest[:16]}.parquet"
    if not path.exists():  # content-addressed: the same pseudo-labels, the same file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        frame.to_parquet(partial, index=False)
        os.replace(partial, path)
    log_rows_input(mlflow, frame, name=f"{project.name}/pseudo-labels",
                   context="pseudo-labels", digest=digest, source=path,
                   tags={PROJECT_TAG: project.name})


def _exported(settings: Settings, project: Project, version: DatasetVersion) -> Path:
    """The version as Parquet under the export folder: the dataset source MLflow records."""
    from sqlalchemy.orm import object_session

    path = settings.export_dir / f"project-{project.id}" / f"{version.name}.parquet"
    if not path.exists():  # written whole or not at all: a kill leaves no partial file
        session = object_session(version)
        assert session is not None
        partial = export_version(session, version, "parquet",
                                 path.with_name(f".{path.name}.{uuid.uuid4().hex}.part"))
        os.replace(partial, path)
    return path

