"""Retrain the pre-labeler on a dataset version, evaluate it, log everything to MLflow.

The new model becomes the project's active pre-labeler for the next round.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sqlalchemy.orm import Session

from labelloop.errors import ValidationError
from labelloop.progress import Progress, silent
from labelloop.settings import Settings
from prelabel.cache import embed_items
from prelabel.heads import ClassifierHead
from prelabel.service import encoder_for
from selection.calibration import calibrate_for_model, estimate_for_model
from selection.routing import CALIBRATION
from selection.service import unlabeled_pool
from store.models import DatasetVersion, Item, ModelVersion, Project
from training.metrics import evaluate_predictions
from training.tracking import (
    experiment_for,
    log_dataset_input,
    mlflow_client,
    quiet_mlflow,
    registered_name,
)
from versions.service import export_version, version_records


def _vectors(session: Session, records: list[dict[str, Any]], settings: Settings,
             progress: Progress, what: str) -> np.ndarray:
    items = [session.get(Item, r["item_id"]) for r in records]
    encoder = encoder_for(settings)
    return embed_items(session, items, encoder, batch_size=settings.embed_batch_size,
                       progress=progress(f"embed {what}", len(items)))


def train_model(session: Session, project: Project, settings: Settings, *,
                train: DatasetVersion, evaluation: DatasetVersion | None = None,
                c: float = 10.0, seed: int = 0, progress: Progress = silent) -> ModelVersion:
    """Fit a classifier head on ``train``'s embeddings; evaluate on ``evaluation``; log and
    register in MLflow; make it the active pre-labeler."""
    for v in (train, evaluation):
        if v is not None and v.project_id != project.id:
            raise ValidationError(f"dataset version {v.id} belongs to another project",
                                  where="version")
    records = version_records(session, train)
    if len({r["label"] for r in records}) < 2:
        raise ValidationError(f"version {train.name} has fewer than two distinct labels; "
                              "cannot train a classifier", where="train_version")
    start = time.perf_counter()
    x = _vectors(session, records, settings, progress, train.name)
    head = ClassifierHead.fit(list(project.labels), x, [r["label"] for r in records], c=c,
                              seed=seed)
    fit_seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"n_train": len(records), "fit_seconds": fit_seconds}
    auto = _calibrate_auto_accept(session, project, settings, records, x, head, c, seed)
    if auto is not None:
        metrics["auto_accept"] = auto
    eval_records: list[dict[str, Any]] = []
    if evaluation is not None:
        eval_records = version_records(session, evaluation)
        xe = _vectors(session, eval_records, settings, progress, evaluation.name)
        pred = [project.labels[k] for k in head.predict_proba(xe).argmax(axis=1)]
        metrics |= evaluate_predictions([r["label"] for r in eval_records], pred,
                                        list(project.labels))

    model = ModelVersion(project_id=project.id, name=f"classifier/{train.name}",
                         kind="classifier", encoder=encoder_for(settings).key,
                         train_version_id=train.id,
                         eval_version_id=evaluation.id if evaluation else None, metrics={})
    session.add(model)
    session.flush()
    path = head.save(settings.home.resolve() / "models" / f"project-{project.id}" /
                     f"model-{model.id}.joblib")
    model.artifact_path = str(path)
    _log_run(model, project, settings, head, train, records, evaluation, eval_records, metrics,
             c)
    model.metrics = metrics
    project.active_model_id = model.id
    session.flush()
    return model


HUMAN_ORIGINS = ("human", "reviewed", "given")
MIN_CALIBRATION = 50  # random calibration rows needed before the pool estimate is trusted
MAX_POOL_SAMPLE = 200_000  # the pool estimate is a mean: a uniform sample of this size will do


def _calibrate_auto_accept(session: Session, project: Project, settings: Settings,
                           records: list[dict[str, Any]], x: np.ndarray, head: ClassifierHead,
                           c: float, seed: int, folds: int = 5) -> dict[str, Any] | None:
    """Auto-accept thresholds from out-of-fold predictions on human-verified rows only
    (auto-accepted rows would grade the model with its own answers).

    With at least ``MIN_CALIBRATION`` rows from the random calibration sample (lineage reason
    "calibration"), a temperature is fitted on their out-of-fold predictions and the
    thresholds come from the pool's calibrated confidence (``estimated_thresholds``); the
    calibration rows themselves are the check (their accepted share and accuracy are stored,
    and an upper bound below target switches auto-accept off). With fewer, every human row
    counts and thresholds must pass a Clopper-Pearson lower bound on them: uncertainty-picked
    rows are harder than the pool, so this is safe and strict (often "never").
    """
    from sklearn.model_selection import KFold

    human = np.array([r["lineage"].get("origin") in HUMAN_ORIGINS for r in records])
    if human.sum() < 50:
        return None
    xh = x[human]
    kept = [r for r, h in zip(records, human, strict=True) if h]
    labels = [r["label"] for r in kept]
    index = {lb: i for i, lb in enumerate(project.labels)}
    y = np.array([index[lb] for lb in labels])
    oof = np.zeros((len(y), len(project.labels)))
    for fit_idx, held_idx in KFold(folds, shuffle=True, random_state=seed).split(xh):
        if len({labels[i] for i in fit_idx}) < 2:
            return None
        fold = ClassifierHead.fit(list(project.labels), xh[fit_idx],
                                  [labels[i] for i in fit_idx], c=c, seed=seed)
        oof[held_idx] = fold.predict_proba(xh[held_idx])
    random_rows = np.array([r["lineage"].get("reason") == CALIBRATION for r in kept])
    if random_rows.sum() < MIN_CALIBRATION:
        return calibrate_for_model(oof, y, project)
    pool = unlabeled_pool(session, project)
    if not pool:
        return calibrate_for_model(oof, y, project)
    if len(pool) > MAX_POOL_SAMPLE:
        rng = np.random.default_rng(seed)
        pool = [pool[i] for i in np.sort(rng.choice(len(pool), MAX_POOL_SAMPLE, replace=False))]
    pool_probs = head.predict_proba(embed_items(session, pool, encoder_for(settings),
                                                batch_size=settings.embed_batch_size))
    return estimate_for_model(pool_probs, oof[random_rows], y[random_rows], project)


def _log_run(model: ModelVersion, project: Project, settings: Settings, head: ClassifierHead,
             train: DatasetVersion, records: list[dict[str, Any]],
             evaluation: DatasetVersion | None, eval_records: list[dict[str, Any]],
             metrics: dict[str, Any], c: float) -> None:
    mlflow = mlflow_client(settings.tracking_uri, settings.artifact_root)
    experiment_for(mlflow, project, settings.artifact_root)
    with quiet_mlflow(), mlflow.start_run(run_name=f"{project.name}-{train.name}") as run:
        mlflow.log_params({"encoder": model.encoder, "head": "logistic-regression", "C": c,
                           "n_train": len(records), "train_version": train.name,
                           "eval_version": evaluation.name if evaluation else "none",
                           "labelloop_model_version_id": model.id})
        mlflow.set_tags({"labelloop.project": project.name,
                         "labelloop.train_version_id": str(train.id),
                         "labelloop.train_digest": train.digest,
                         "labelloop.eval_version_id": str(evaluation.id) if evaluation else "",
                         "labelloop.eval_digest": evaluation.digest if evaluation else ""})
        log_dataset_input(mlflow, train, records, "training", project,
                          _exported(settings, project, train))
        if evaluation is not None:
            log_dataset_input(mlflow, evaluation, eval_records, "evaluation", project,
                              _exported(settings, project, evaluation))
            flat = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
            for label, figs in metrics["per_class"].items():
                flat[f"f1.{_metric_key(label)}"] = figs["f1"]
            mlflow.log_metrics(flat)
            mlflow.log_dict(metrics, "evaluation.json")
        # Naming the requirement skips MLflow's inference, which imports the model's modules
        # in a subprocess (tens of seconds per run).
        info = mlflow.sklearn.log_model(
            head.model, name="model", registered_model_name=registered_name(project),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        model.mlflow_run_id = run.info.run_id
        model.registered_name = registered_name(project)
        model.registered_version = str(getattr(info, "registered_model_version", "") or "")


def _exported(settings: Settings, project: Project, version: DatasetVersion) -> Path:
    """The version as Parquet under the export folder: the dataset source MLflow records."""
    from sqlalchemy.orm import object_session

    path = settings.export_dir / f"project-{project.id}" / f"{version.name}.parquet"
    if not path.exists():
        session = object_session(version)
        assert session is not None
        export_version(session, version, "parquet", path)
    return path


def _metric_key(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in label)
