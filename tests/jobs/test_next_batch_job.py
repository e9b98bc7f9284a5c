"""Next batch as a job: POST /projects/{p}/batches/jobs answers 202 at once; the server's
worker pre-labels the pool in committed chunks and makes the batch (real MiniLM pre-labels
on the tasks), its progress and result read at the job's address; bad input is refused
before anything is queued, an annotator may not start one, and a rerun of a job whose batch
committed makes no second batch."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.api.app import create_app
from labelloop.core.enums import AuditAction, JobKind, JobStatus, Role
from labelloop.ingest.service import ingest_file
from labelloop.jobs.service import run_job, submit_job, wait
from labelloop.store.db import open_session
from labelloop.store.models import AuditEvent, Batch, Item, Job, Prediction, Task
from tests.api.conftest import Team, admin_token, bearer
from tests.conftest import LABELS, banking_rows, write_csv


@pytest.fixture
def pooled(settings, project_name, tmp_path):  # noqa: ANN001, ANN201
    """Project "bank" with 40 pool items, none pre-labeled yet; chunks of 16 items."""
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 5), fields=("text",))
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), pool)
    return settings.model_copy(update={"job_chunk": 16})


def _count(settings, model) -> int:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        return s.scalar(select(func.count(model.id))) or 0


def test_the_job_makes_a_batch_with_prelabeled_tasks(pooled):
    settings = pooled
    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    with client:  # the server's worker runs the job
        r = client.post("/projects/bank/batches/jobs", json={"size": 6, "seed": 0})
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "next-batch" and r.json()["status"] == "queued"
        assert r.headers["Location"] == f"/projects/{r.json()['project_id']}/jobs/{r.json()['id']}"
        job = wait(settings, r.json()["id"], timeout_s=300)
        assert job.status == JobStatus.DONE, job.last_error
        out = client.get(r.headers["Location"]).json()
    n_items = _count(settings, Item)
    # progress: every item pre-labeled (in chunks of 16), then one step for the batch
    assert (out["done"], out["total"], out["fraction"]) == (n_items + 1, n_items + 1, 1.0)
    result = out["result"]
    assert result["n_tasks"] >= 6 and result["strategy"] == "default"
    assert _count(settings, Prediction) == n_items
    with open_session(settings.db_url, read_only=True) as s:
        batch = s.get(Batch, result["batch_id"])
        assert batch is not None and batch.status == "open"
        tasks = list(s.scalars(select(Task).where(Task.batch_id == batch.id)))
        events = list(s.scalars(select(AuditEvent).where(
            AuditEvent.action == AuditAction.NEXT_BATCH)))
    assert len(tasks) == result["n_tasks"]
    assert all(t.prelabel in LABELS and 0 < t.prelabel_confidence <= 1 for t in tasks)
    assert [(e.actor, e.target, e.detail["job"]) for e in events] == [
        ("admin", f"batch {batch.id}", out["id"])]


@pytest.mark.parametrize("body", [{"strategy": "nope"}, {"size": 0}, {"size": 10**9},
                                  {"seed": -1}, {"class_boost": {"card_arrival": -1}}])
def test_bad_input_is_refused_and_nothing_is_queued(pooled, body):
    client = TestClient(create_app(pooled), headers=bearer(admin_token(pooled)))
    r = client.post("/projects/bank/batches/jobs", json=body)
    assert r.status_code == 422, r.text
    if "strategy" in body:
        assert r.json()["detail"]["where"] == "strategy"
        assert "default" in r.json()["detail"]["message"]  # the names available
    assert _count(pooled, Job) == 0


def test_an_annotator_may_not_start_one(pooled):
    client = TestClient(create_app(pooled))
    ana = Team(pooled).headers("ana", Role.ANNOTATOR, "bank")
    r = client.post("/projects/bank/batches/jobs", json={"size": 4}, headers=ana)
    assert r.status_code == 403, r.text
    assert _count(pooled, Job) == 0


def test_a_rerun_after_the_batch_committed_makes_no_second_batch(pooled):
    settings = pooled
    with open_session(settings.db_url) as s:
        job_id = submit_job(s, settings, JobKind.NEXT_BATCH, by="admin", enqueue=False,
                            project=get_project(s, "bank"),
                            params={"size": 4, "strategy": "default", "auto_accept": True,
                                    "seed": 1, "class_boost": None}).id
    assert run_job(settings, job_id) == JobStatus.DONE
    with open_session(settings.db_url) as s:  # as if killed after the batch's commit
        job = s.get(Job, job_id)
        job.status, job.finished_at = JobStatus.QUEUED, None
        first = dict(job.result)
    assert run_job(settings, job_id) == JobStatus.DONE
    with open_session(settings.db_url, read_only=True) as s:
        job = s.get(Job, job_id)
        assert job.attempts == 2 and job.result["batch_id"] == first["batch_id"]
    assert _count(settings, Batch) == 1
