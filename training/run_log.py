"""A retrain's MLflow run: the head's file, params and metrics, dataset inputs, evaluation,
and the registry version (``log_run``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sklearn

from labelloop.core import failpoints
from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.prelabel.heads import ClassifierHead
from labelloop.prelabel.smoothing import NeighbourSmoothing
from labelloop.store.models import DatasetVersion, ModelVersion, Project
from labelloop.training.metrics import confusion_counts
from labelloop.training.out_of_fold import Pseudo
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
    quiet_mlflow,
    registered_name,
    set_alias,
)
from labelloop.versions.service import export_version


def model_dir(settings: Settings, project: Project) -> Path:
    return settings.home.resolve() / "models" / f"project-{project.id}"


def _save_head(head: ClassifierHead, settings: Settings, project: Project, run_id: str) -> Path:
    """The head's file, named by its MLflow run, written whole or not at all."""
    path = model_dir(settings, project) / f"model-{run_id}.joblib"
    partial = head.save(path.with_name(f".{path.name}.{uuid.uuid4().hex}.part"))
    os.replace(partial, path)
    return path


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


def log_run(model: ModelVersion, project: Project, settings: Settings, head: ClassifierHead,
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
