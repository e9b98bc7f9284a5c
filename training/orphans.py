"""What a killed training leaves behind, found and removed.

A training job makes, in this order: an MLflow run (its id noted at once on the job's row,
in a commit of its own), the head's file (named by the run), the registry version, and last
the ``model_versions`` row that names all three (``training.service.train_model``). Killed
before that row commits, it leaves some of the first three with no row. :func:`reconcile`
takes the runs that this project's training jobs noted and that no row names, unless their
job is still running: each is marked KILLED if it was left RUNNING, tagged
``labelloop.orphan`` and deleted, and its registry version and its file are removed. Only
runs this database's jobs noted are touched, never another deployment's that share the
MLflow server. A tuned encoder that no row names (a training killed after its fine-tuning
check) goes too, with its cached vectors, when no other training of the project runs.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from labelloop.core.enums import JobKind, JobStatus
from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.store.models import Embedding, Job, ModelVersion, Project, utcnow
from labelloop.training.tracking import mlflow_client, registered_name

ORPHAN_TAG = "labelloop.orphan"
RUNS_KEY = "runs"  # job.result[RUNS_KEY]: the MLflow runs a training job started


@dataclass
class Reconciled:
    runs_ended: int = 0  # left RUNNING, now KILLED
    runs_deleted: int = 0
    registry_versions_deleted: int = 0
    files_removed: int = 0
    encoders_removed: int = 0  # tuned encoder folders no model reads, with their vectors

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def reconcile(session: Session, project: Project, settings: Settings, *,
              current_job: int | None = None, grace_s: float | None = None) -> Reconciled:
    """Remove the runs, registry versions and files of the project's trainings that were
    killed before their row committed (see the module). Partial files older than
    ``grace_s`` (default ``settings.job_stale_s``) go too."""
    named = set(session.scalars(select(ModelVersion.mlflow_run_id).where(
        ModelVersion.project_id == project.id, ModelVersion.mlflow_run_id.is_not(None))))
    named_files = set(session.scalars(select(ModelVersion.artifact_path).where(
        ModelVersion.project_id == project.id, ModelVersion.artifact_path.is_not(None))))
    fresh = utcnow() - timedelta(seconds=settings.job_stale_s)
    noted: set[str] = set()
    busy = False  # another training of the project is running (it may be tuning)
    for job in session.scalars(select(Job).where(Job.project_id == project.id,
                                                 Job.kind == JobKind.TRAIN)):
        live = (job.id != current_job and job.status == JobStatus.RUNNING
                and job.heartbeat_at is not None and job.heartbeat_at >= fresh)
        busy = busy or live
        if not live:
            noted.update(job.result.get(RUNS_KEY, []))
    orphans = noted - named
    done = Reconciled()
    if orphans:
        _remove_runs(project, settings, orphans, done)
    cutoff = time.time() - (settings.job_stale_s if grace_s is None else grace_s)
    folder = settings.home.resolve() / "models" / f"project-{project.id}"
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if str(path) in named_files:
            continue
        if _run_of(path) in orphans or (path.name.endswith(".part")
                                        and path.stat().st_mtime < cutoff):
            path.unlink(missing_ok=True)
            done.files_removed += 1
    if not busy:
        done.encoders_removed = _remove_tuned(session, project, settings, cutoff)
    return done


def _remove_tuned(session: Session, project: Project, settings: Settings,
                  cutoff: float) -> int:
    """Tuned encoder folders of the project (``prelabel.tuned``) that no model row names
    and that were last written before ``cutoff`` -- a training killed after its fine-tuning
    check -- are deleted, with the vectors cached under their key."""
    named = set(session.scalars(select(ModelVersion.encoder).where(
        ModelVersion.project_id == project.id)))
    root = tuned.folder(settings, tuned.new_key(project.id)).parent
    removed = 0
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        key = f"{tuned.PREFIX}project-{project.id}/{path.name}"
        if key in named or path.stat().st_mtime >= cutoff:
            continue
        shutil.rmtree(path, ignore_errors=True)
        session.execute(delete(Embedding).where(Embedding.encoder == key))
        removed += 1
    return removed


def _run_of(path: Path) -> str | None:
    """The run id in ``model-<run>.joblib`` (or its partial file)."""
    name = path.name.lstrip(".")
    return name.removeprefix("model-").split(".")[0] if name.startswith("model-") else None


def _remove_runs(project: Project, settings: Settings, orphans: set[str],
                 done: Reconciled) -> None:
    client = mlflow_client(settings.tracking_uri, settings.artifact_root).MlflowClient()
    for run_id in sorted(orphans):
        try:
            run = client.get_run(run_id)
        except Exception:  # noqa: BLE001 - gone from the server already
            continue
        if run.info.lifecycle_stage == "deleted":
            continue
        if run.info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
            done.runs_ended += 1
        client.set_tag(run_id, ORPHAN_TAG, "true")
        client.delete_run(run_id)
        done.runs_deleted += 1
    name = registered_name(project)
    for version in client.search_model_versions(f"name='{name}'"):
        if version.run_id in orphans:
            client.delete_model_version(name, version.version)
            done.registry_versions_deleted += 1
