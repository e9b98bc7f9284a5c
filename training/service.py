"""Retrain the pre-labeler on a dataset version, evaluate it, log everything to MLflow.

The new model becomes the project's active pre-labeler for the next round (registry alias
``prelabeler``), or, trained with ``promote=False``, waits as the ``candidate`` until
``promote_model`` makes it live.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core import failpoints
from labelloop.core.errors import ValidationError
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.prelabel.cache import embed_items, vectors_by_id
from labelloop.prelabel.encoders import Encoder
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.recipe import DEFAULT, Recipe, RecipeChoice, fit_chosen, fit_head
from labelloop.prelabel.service import encoder_for
from labelloop.prelabel.smoothing import NeighbourSmoothing
from labelloop.selection.routing import CALIBRATION
from labelloop.store.models import DatasetVersion, Item, ModelVersion, Project
from labelloop.store.pages import id_array
from labelloop.training import finetuning
from labelloop.training.metrics import evaluate_predictions
from labelloop.training.out_of_fold import (
    PoolVectors,
    Pseudo,
    calibrate_auto_accept,
    pool_vectors,
    self_train,
)
from labelloop.training.run_log import RunData, log_run
from labelloop.training.smoothing_index import smoothing_for
from labelloop.training.tracking import (
    point_prelabeler,
)
from labelloop.versions.lineage import diff_versions
from labelloop.versions.service import version_records


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
    fitter = functools.partial(_fit_recipe, session, project, settings, records, labels,
                               uniform, incumbent, c, seed, progress, train.name)
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
    pool: PoolVectors = functools.cache(lambda: pool_vectors(session, project, settings,
                                                             encoder))
    pseudo: Pseudo | None = None
    if settings.self_training:
        head, pseudo = self_train(project, settings, records, x, head, c, seed, pool)
    fit_seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"n_train": len(records), "fit_seconds": fit_seconds,
                               "n_version_rows": len(version_rows),
                               "smoothing_k": head.smoothing.k if head.smoothing else 0,
                               "recipe": choice.to_json()}
    if plan.state:
        metrics["finetune"] = plan.state
    if pseudo is not None:
        metrics["self_training"] = pseudo.summary()
    auto = calibrate_auto_accept(project, records, x, head, c, seed, pool,
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
    log_run(model, project, settings, head, data, metrics, c, pseudo, job_id=job_id,
             on_run=on_run)
    failpoints.hit("train.run-ended")
    return model


Fitted = tuple[np.ndarray, NeighbourSmoothing | None, ClassifierHead, RecipeChoice]


def _fit_recipe(session: Session, project: Project, settings: Settings,
                records: list[dict[str, Any]], labels: list[str], uniform: np.ndarray,
                incumbent: Recipe, c: float | None, seed: int, progress: Progress, what: str,
                encoder: Encoder) -> Fitted:
    """The rows' vectors under ``encoder``, the smoothing index over its pool vectors, and
    the head: the recipe chosen out of fold (``fit_chosen``), or the incumbent when
    ``settings.recipe`` is "fixed"."""
    x = _vectors(session, records, settings, progress, what, encoder)
    smoothing = smoothing_for(session, project, settings, encoder, seed)
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


