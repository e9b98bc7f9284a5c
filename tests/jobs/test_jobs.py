"""Jobs: pre-labeling runs in committed chunks on the server's worker; its progress is read
over the API while it runs; a cancelled job stops at its next chunk and keeps what it
committed; a queued job can come twice and runs once."""

from __future__ import annotations

import threading
import time

import httpx
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.core.enums import JobKind, JobStatus
from labelloop.jobs.service import cancel_job, get_job, run_job, submit_job
from labelloop.store.db import open_session
from labelloop.store.models import Item, Prediction
from tests.api.conftest import admin_token, bearer
from tests.conftest import LABELS, banking_rows, live_server, write_csv


def _predicted(settings) -> tuple[int, int]:  # noqa: ANN001
    """(predictions, distinct items predicted)."""
    with open_session(settings.db_url, read_only=True) as s:
        return (s.scalar(select(func.count(Prediction.id))) or 0,
                s.scalar(select(func.count(func.distinct(Prediction.item_id)))) or 0)


def test_progress_of_a_running_job_advances_over_the_api(settings, project_name, tmp_path):
    settings = settings.model_copy(update={"job_chunk": 8})
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 20),
                     fields=("text",))
    with live_server(settings) as url:
        client = httpx.Client(base_url=url, headers=bearer(admin_token(settings)), timeout=30)
        with pool.open("rb") as fh:
            assert client.post("/projects/bank/ingest", files={"file": ("p.csv", fh)}
                               ).status_code == 200
        r = client.post("/projects/bank/prelabel")
        assert r.status_code == 202, r.text
        seen = []
        deadline = time.time() + 120
        while time.time() < deadline:
            job = client.get(r.headers["Location"]).json()
            seen.append((job["status"], job["done"], job["total"]))
            if job["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.01)
    assert job["status"] == "done", job
    assert (job["done"], job["total"], job["result"]["n_new"]) == (160, 160, 160)
    running = sorted({done for status, done, _ in seen if status == "running"})
    assert len([d for d in running if 0 < d < 160]) >= 2, seen  # seen mid-way, twice
    dones = [done for _, done, _ in seen]
    assert dones == sorted(dones)  # never goes back
    assert job["rate_per_s"] > 0 and job["attempts"] == 1
    assert _predicted(settings) == (160, 160)


def _pool(settings, project_name, tmp_path, n_per_label: int = 5) -> None:  # noqa: ANN001
    from labelloop.ingest.service import ingest_file

    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, n_per_label),
                     fields=("text",))
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), pool)


def test_cancel_stops_at_the_next_chunk_and_keeps_what_was_committed(
        settings, project_name, tmp_path):
    settings = settings.model_copy(update={"job_chunk": 10})
    _pool(settings, project_name, tmp_path)
    with open_session(settings.db_url) as s:
        queued = submit_job(s, settings, JobKind.PRELABEL, by="t", enqueue=False,
                            project=get_project(s, project_name)).id
        running = submit_job(s, settings, JobKind.PRELABEL, by="t", enqueue=False,
                             project=get_project(s, project_name)).id
    with open_session(settings.db_url) as s:  # a queued job is cancelled at once
        assert cancel_job(s, get_job(s, queued)).status == JobStatus.CANCELLED
    assert run_job(settings, queued) is None and _predicted(settings) == (0, 0)

    # Cancel the running one from another thread as soon as its first chunk is in.
    def cancel_after_first_chunk() -> None:
        while True:
            with open_session(settings.db_url) as s:
                job = get_job(s, running)
                if job.done > 0:
                    cancel_job(s, job)
                    return
            time.sleep(0.005)

    canceller = threading.Thread(target=cancel_after_first_chunk)
    canceller.start()
    assert run_job(settings, running) == JobStatus.CANCELLED
    canceller.join()
    with open_session(settings.db_url, read_only=True) as s:
        job = get_job(s, running)
        n_items = s.scalar(select(func.count(Item.id))) or 0
    assert job.status == JobStatus.CANCELLED and 0 < job.done < n_items == 40
    assert _predicted(settings) == (job.done, job.done)  # kept, once each
    with open_session(settings.db_url) as s:  # an ended job cannot be cancelled again
        try:
            cancel_job(s, get_job(s, running))
            raise AssertionError("cancelled twice")
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "ConflictError"


def test_a_message_that_comes_twice_runs_the_job_once(settings, project_name, tmp_path):
    _pool(settings, project_name, tmp_path)
    with open_session(settings.db_url) as s:
        job_id = submit_job(s, settings, JobKind.PRELABEL, by="t", enqueue=False,
                            project=get_project(s, project_name)).id
    assert run_job(settings, job_id) == JobStatus.DONE
    assert run_job(settings, job_id) is None  # the second message: nothing to do
    with open_session(settings.db_url, read_only=True) as s:
        job = get_job(s, job_id)
    assert (job.attempts, job.done, job.total) == (1, 40, 40)
    assert _predicted(settings) == (40, 40)
