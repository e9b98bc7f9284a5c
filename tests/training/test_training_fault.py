"""Training killed at each stage leaves no orphan: the local CLI's training job is killed
with SIGKILL at each failpoint (after the MLflow run starts, after the model file, after the
registry version, after the run ends, before the row commits); the job is then taken over
and finishes. After each, every model row has its file, its finished run and its registry
version, and there is nothing else: no run left RUNNING or without a row, no registry
version without a model, no stray file in the model folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.core.enums import JobStatus
from labelloop.ingest.service import ingest_file
from labelloop.jobs.service import run_job
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import Job, ModelVersion
from labelloop.training.orphans import ORPHAN_TAG
from labelloop.training.run_log import model_dir
from labelloop.versions.service import freeze_version

STAGES = ("train.run-started", "train.file-written", "train.registered", "train.run-ended",
          "train.before-commit")
# The PostgreSQL pass kills at the first stage and at the one whose undoing is the database's
# (the row not committed); the stages between differ only in MLflow and files.
if os.environ.get("LABELLOOP_TEST_DB") == "postgres":
    STAGES = (STAGES[0], STAGES[-1])


@pytest.fixture
def versions(settings, project_name, pool_csv, eval_csv) -> tuple[str, str]:
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        ingest_file(s, p, eval_csv, label_field="category", split="eval")
        return freeze_version(s, p).name, freeze_version(s, p, split="eval").name


def _killed_training(settings, train: str, evaluation: str, stage: str) -> int:  # noqa: ANN001
    env = os.environ | {"LABELLOOP_HOME": str(settings.home),
                        "LABELLOOP_DATABASE_URL": settings.db_url,
                        "LABELLOOP_MLFLOW_TRACKING_URI": settings.tracking_uri,
                        "LABELLOOP_FAILPOINT": stage, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "labelloop.cli", "train", "bank", train,
                           "--eval-version", evaluation], env=env, capture_output=True,
                          timeout=300)
    assert done.returncode == -9, (stage, done.stderr[-2000:])
    dispose_engines(settings.db_url)
    with open_session(settings.db_url, read_only=True) as s:
        job = s.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job is not None and job.status == JobStatus.RUNNING  # killed mid-way
    return job.id


def _check_no_orphans(settings, project_name) -> list[ModelVersion]:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        project = get_project(s, project_name)
        rows = list(s.scalars(select(ModelVersion).where(ModelVersion.kind == "classifier")))
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name("labelloop/bank")
    active = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
    named = {m.mlflow_run_id for m in rows}
    assert {r.info.run_id for r in active} == named  # every live run has its row
    assert all(r.info.status == "FINISHED" for r in active)
    deleted = client.search_runs([experiment.experiment_id],
                                 run_view_type=ViewType.DELETED_ONLY)
    assert all(r.info.status != "RUNNING" and r.data.tags.get(ORPHAN_TAG) == "true"
               for r in deleted)
    versions = client.search_model_versions("name='labelloop-bank'")
    assert {v.run_id for v in versions} == named  # every registry version has its model
    files = set(map(str, model_dir(settings, project).iterdir()))
    assert files == {m.artifact_path for m in rows}  # every file has its row, and only those
    return rows


def test_training_killed_at_each_stage_leaves_no_orphan(settings, project_name, versions,
                                                        tmp_path):
    # an MLflow store of its own: what is in it is this test's doing
    settings = settings.model_copy(update={
        "job_stale_s": 0.5, "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'own-mlflow.db'}"})
    train, evaluation = versions
    for n, stage in enumerate(STAGES, start=1):
        job_id = _killed_training(settings, train, evaluation, stage)
        time.sleep(0.6)  # its worker is silent: the job may be taken over
        assert run_job(settings, job_id) == JobStatus.DONE
        rows = _check_no_orphans(settings, project_name)
        assert len(rows) == n, stage
        with open_session(settings.db_url, read_only=True) as s:
            job = s.get(Job, job_id)
        assert job is not None and job.attempts == 2
        # what the killed attempt had made (its run at least) was cleared
        assert job.result["cleared"]["runs_deleted"] == 1, (stage, job.result)


def test_a_training_job_leaves_the_writer_free_while_it_fits(settings, project_name,
                                                             versions, monkeypatch):
    """While a training job fits and logs its run, another unit of work writes at once (on
    SQLite, where one writer at a time is allowed, training used to hold it throughout);
    the model's row then commits as the job's last step."""
    import threading

    from labelloop.access.users import bootstrap_admin
    from labelloop.core.enums import JobKind
    from labelloop.jobs.service import submit_job
    from labelloop.store.models import Project

    train, evaluation = versions
    waits: list[float] = []

    from labelloop.training import service as training

    calibrate = training.calibrate_auto_accept

    def write_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        """Mid-fit (the head fitted, its auto-accept calibration next), another thread writes."""
        def write() -> None:
            start = time.perf_counter()
            with open_session(settings.db_url) as w:
                w.get(Project, project_id).label_descriptions = {"a": "written meanwhile"}
            waits.append(time.perf_counter() - start)
        other = threading.Thread(target=write)
        other.start()
        other.join(timeout=10)
        assert waits, "a write waited for the training job"
        return calibrate(*args, **kwargs)

    monkeypatch.setattr(training, "calibrate_auto_accept", write_meanwhile)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        project_id = p.id
        job_id = submit_job(s, settings, JobKind.TRAIN, by=bootstrap_admin(s).name, project=p,
                            enqueue=False,
                            params={"train_version": train, "eval_version": evaluation}).id
    assert run_job(settings, job_id) == JobStatus.DONE
    assert len(waits) == 1 and waits[0] < 5
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        model = s.get(ModelVersion, p.active_model_id)
        assert p.label_descriptions == {"a": "written meanwhile"}
        assert model is not None and model.kind == "classifier"
        assert s.get(Job, job_id).result["model_version_id"] == model.id
