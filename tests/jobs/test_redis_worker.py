"""Production mode: the queue on Redis (127.0.0.1:6379), the server without a worker thread,
and a separate ``labelloop worker`` process (huey's consumer) running the jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from labelloop.api.app import create_app
from labelloop.jobs.service import wait
from tests.api.conftest import admin_token, bearer
from tests.conftest import LABELS, banking_rows, write_csv

redis = pytest.importorskip("redis")


@pytest.fixture
def redis_url() -> str:
    """A Redis database of its own for this test (emptied before and after)."""
    url = "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis on 127.0.0.1:6379 (CI has one)")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.mark.sqlite_only  # the Redis queue is what is tested
def test_a_worker_process_runs_jobs_from_redis(settings, project_name, tmp_path, redis_url):
    settings = settings.model_copy(update={"queue_url": redis_url, "job_worker": False,
                                           "job_chunk": 50})
    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 20), fields=("text",))
    with client, pool.open("rb") as fh:
        assert client.post("/projects/bank/ingest", files={"file": ("p.csv", fh)}
                           ).status_code == 200
        job = client.post("/projects/bank/prelabel").json()
    assert wait(settings, job["id"], timeout_s=2).status == "queued"  # no worker yet

    env = os.environ | {"LABELLOOP_HOME": str(settings.home),
                        "LABELLOOP_DATABASE_URL": settings.db_url,
                        "LABELLOOP_QUEUE_URL": redis_url, "LABELLOOP_JOB_CHUNK": "50",
                        "HF_HUB_OFFLINE": "1", "LABELLOOP_MLFLOW_TRACKING_URI":
                        settings.tracking_uri}
    worker = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ended = wait(settings, job["id"], timeout_s=180)
    finally:
        worker.send_signal(signal.SIGINT)  # huey's consumer: stop after the running task
        _, err = worker.communicate(timeout=60)
    assert ended.status == "done", (ended.last_error, err[-2000:])
    assert (ended.done, ended.total, ended.result["n_new"]) == (160, 160, 160)
