"""MLflow as the researcher's home: every run names the rows it fitted and evaluated on (with
labelloop's full digests), its per-class figures and confusion matrix, what changed in the
data since the live model, and the registry aliases ``prelabeler`` (the live model) and
``candidate`` (trained, not promoted)."""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelloop.store.models import DatasetVersion, Project
from labelloop.versions.service import version_digest

PROJECT_TAG = "labelloop.project"
JOB_TAG = "labelloop.job_id"  # the job that ran the training ("" outside a job)
DIGEST_TAG = "labelloop.digest"  # an input's full sha256 (64 hex characters)
DATA_DIFF_TAG = "labelloop.data_diff"
PRELABELER = "prelabeler"  # registry alias: the project's live (active) model
CANDIDATE = "candidate"  # registry alias: the newest model trained and not promoted
# MLflow's SQL store keeps a dataset's digest in ``datasets.digest``, a String(36)
# (mlflow/store/tracking/dbmodels/models.py, SqlDataset): longer digests do not fit.
DIGEST_CHARS = 36


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


def records_digest(records: list[dict[str, Any]]) -> str:
    """The digest of version records (``version_records``' rows), computed as
    ``versions.service.version_digest`` computes a version's: all of a version's rows give
    its own digest, a subset gives the digest of just those rows."""
    return version_digest([(r["lineage"]["content_hash"], r["label"]) for r in records])


@functools.cache
def _profiled_dataset() -> type:
    """``PandasDataset`` with labelloop's figures added to its profile (MLflow imported only
    when a run is logged)."""
    from mlflow.data.pandas_dataset import PandasDataset

    class ProfiledPandasDataset(PandasDataset):
        def __init__(self, *args: Any, extra_profile: dict[str, Any], **kwargs: Any) -> None:
            self._extra_profile = extra_profile
            super().__init__(*args, **kwargs)

        @property
        def profile(self) -> dict[str, Any]:
            return {**(super().profile or {}), **self._extra_profile}

    return ProfiledPandasDataset


def log_rows_input(mlflow, frame: pd.DataFrame, *, name: str, context: str,  # noqa: ANN001
                   digest: str, source: Path, tags: dict[str, str]) -> None:
    """``mlflow.log_input`` of ``frame`` (n_rows, columns item_id, label and maybe text) under
    ``context``, its source the labelloop file it came from.

    The full 64-character sha256 ``digest`` cannot be the dataset's digest (``DIGEST_CHARS``):
    that field holds its first 36 characters, and the whole digest is kept twice, in the
    input's tags (``labelloop.digest``, with ``labelloop.n_rows``: per run) and in the
    dataset's profile (``labelloop_digest`` beside MLflow's ``num_rows``: shown with the
    dataset in the UI). ``mlflow.data.from_pandas`` takes no profile, so the dataset is a
    ``PandasDataset`` subclass whose ``profile`` adds these fields."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    dataset = _profiled_dataset()(
        frame, source=resolve_dataset_source(str(source)), targets="label", name=name,
        digest=digest[:DIGEST_CHARS], extra_profile={"labelloop_digest": digest,
                                                     "labelloop_source": str(source)})
    mlflow.log_input(dataset, context=context, tags={
        DIGEST_TAG: digest, "labelloop.n_rows": str(len(frame)), **tags})


def log_version_input(mlflow, project: Project, version: DatasetVersion,  # noqa: ANN001
                      records: list[dict[str, Any]], context: str, source: Path) -> str:
    """Log ``records`` (all of ``version``'s rows, or the subset a model used) as an input;
    returns their digest. A subset's dataset is named ``<project>/<version>/<context>`` and
    digested over its own rows; the version's digest stays in ``labelloop.version_digest``."""
    digest = records_digest(records)
    name = f"{project.name}/{version.name}"
    if digest != version.digest:
        name += f"/{context}"
    frame = pd.DataFrame({"item_id": [r["item_id"] for r in records],
                          "text": [r["text"] for r in records],
                          "label": [r["label"] for r in records]})
    log_rows_input(mlflow, frame, name=name, context=context, digest=digest, source=source,
                   tags={PROJECT_TAG: project.name, "labelloop.version_id": str(version.id),
                         "labelloop.version_name": version.name,
                         "labelloop.version_digest": version.digest})
    return digest


def per_class_metrics(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    """``evaluate_predictions``' per-class figures as flat MLflow metrics:
    ``precision.<label>``, ``recall.<label>``, ``f1.<label>``, ``support.<label>``."""
    return {f"{figure}.{metric_key(label)}": float(figs[figure])
            for label, figs in per_class.items()
            for figure in ("precision", "recall", "f1", "support")}


def metric_key(label: str) -> str:
    """A label as MLflow allows it in a metric key (letters, digits, ``_-./`` and space)."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in label)


MAX_TICK_LABELS = 80  # beyond this, every k-th class is named on the axes


def confusion_figure(labels: list[str], counts: np.ndarray):  # noqa: ANN201
    """A matplotlib ``Figure`` (Agg canvas, no pyplot state) of ``counts`` (n_labels,
    n_labels; row = true, column = predicted), each row shaded by its share (square-root
    scale) so rare classes and small confusions read as clearly as common ones. The figure
    grows with the classes (77 BANKING77 intents: about 17 inches a side, 6-point names);
    counts are written in the cells up to 25 classes, and past ``MAX_TICK_LABELS`` classes
    every k-th is named."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    n = len(labels)
    side = min(4.0 + 0.16 * n, 24.0)
    font = max(4.0, min(9.0, 480.0 / max(n, 1)))
    fig = Figure(figsize=(side + 2.0, side + 1.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    # A square-root scale: a confusion taking 5% of a class shows, not just the diagonal.
    image = ax.imshow(share, cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0),
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true class's rows")
    step = max(1, math.ceil(n / MAX_TICK_LABELS))
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=font)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({int(counts.sum())} rows, "
                 f"{int(np.trace(counts))} correct)")
    if n <= 25:
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, str(c), ha="center", va="center", fontsize=font,
                        color="white" if share[i, j] > 0.5 else "black")
    return fig


def log_confusion_matrix(mlflow, labels: list[str], counts: np.ndarray) -> None:  # noqa: ANN001
    """``confusion_matrix.png`` (``confusion_figure``) and ``confusion_matrix.json``
    ({"labels", "counts": rows true x columns predicted}) as the run's artefacts."""
    mlflow.log_figure(confusion_figure(labels, counts), "confusion_matrix.png")
    mlflow.log_dict({"labels": labels, "rows": "true", "columns": "predicted",
                     "counts": counts.tolist()}, "confusion_matrix.json")


def diff_summary(diff: dict[str, Any]) -> str:
    """One line of a ``versions.lineage.diff_versions`` result:
    ``"vs train-v1: +120 added, -0 removed, 14 relabeled"``."""
    return (f"vs {diff['old']['name']}: +{diff['added']} added, -{diff['removed']} removed, "
            f"{diff['relabeled']} relabeled")


def log_data_diff(mlflow, diff: dict[str, Any]) -> None:  # noqa: ANN001
    """Tag the run ``labelloop.data_diff`` with ``diff_summary`` and log the whole diff
    (counts, and the items ``diff_versions`` lists with who and why) as ``data_diff.json``."""
    mlflow.set_tag(DATA_DIFF_TAG, diff_summary(diff))
    mlflow.log_dict(json.loads(json.dumps(diff, default=str)), "data_diff.json")


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    """Point registry ``alias`` of model ``name`` at ``version`` (moved off any other)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).set_registered_model_alias(name, alias, version)


def point_prelabeler(tracking_uri: str, name: str, version: str) -> None:
    """Move ``prelabeler`` to ``version`` and drop ``candidate`` if it named that version
    (a candidate promoted is a candidate no more; a newer candidate keeps its alias)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    client.set_registered_model_alias(name, PRELABELER, version)
    if str(client.get_registered_model(name).aliases.get(CANDIDATE)) == str(version):
        client.delete_registered_model_alias(name, CANDIDATE)
