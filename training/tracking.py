"""MLflow: every run names the dataset versions (with digests) that trained and evaluated it."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from labelloop.store.models import DatasetVersion, Project

PROJECT_TAG = "labelloop.project"
JOB_TAG = "labelloop.job_id"  # the job that ran the training ("" outside a job)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's advice that does not apply here (schema hints, source guessing)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column.*")
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        yield


def mlflow_client(tracking_uri: str, artifact_root: Path):  # noqa: ANN201
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow


def ensure_store(tracking_uri: str) -> None:
    """Create a local MLflow store's tables now (a database URI: MLflow migrates it on first
    use). A server does this at start, so that a training job run in a child process never
    migrates it: a process killed mid-migration leaves a store MLflow cannot open again."""
    if not tracking_uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
        return
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)


def experiment_for(mlflow, project: Project, artifact_root: Path) -> str:  # noqa: ANN001
    name = f"labelloop/{project.name}"
    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if not re.match(r"^(https?|databricks)", mlflow.get_tracking_uri()):
            artifact_root.mkdir(parents=True, exist_ok=True)
            location = (artifact_root / _safe(project.name)).as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return name


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def registered_name(project: Project) -> str:
    return f"labelloop-{_safe(project.name)}"


def log_dataset_input(mlflow, version: DatasetVersion, records: list[dict[str, Any]],  # noqa: ANN001
                      context: str, project: Project, source: Path) -> None:
    """``mlflow.log_input`` with the version's own digest and id, so a run names its data."""
    df = pd.DataFrame({"item_id": [r["item_id"] for r in records],
                       "text": [r["text"] for r in records],
                       "label": [r["label"] for r in records]})
    dataset = mlflow.data.from_pandas(df, source=str(source),
                                      targets="label", name=f"{project.name}/{version.name}",
                                      digest=version.digest[:36])
    mlflow.log_input(dataset, context=context, tags={
        "labelloop.version_id": str(version.id), "labelloop.version_name": version.name,
        "labelloop.digest": version.digest})
