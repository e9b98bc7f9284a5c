"""A pre-labeling job over 50,000 items is killed with SIGKILL mid-way, twice, with its
server; each restart's worker takes the job over and carries on from its last committed
chunk. In the end every item is predicted exactly once, and after each kill the progress on
record equals the predictions on disk.

The vectors are precomputed (random, stored in the embedding cache under the encoder's key):
what is tested is the job's resumption, not MiniLM's speed."""

from __future__ import annotations

import os
import signal
import time

import httpx
import numpy as np
from sqlalchemy import func, insert, select

from labelloop.access.projects import create_project
from labelloop.access.users import bootstrap_admin, create_token
from labelloop.core.enums import JobStatus
from labelloop.prelabel.service import encoder_for
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import Embedding, IngestBatch, Item, Job, Prediction
from tests.conftest import LABELS, free_port, server_process

# 50k items on the SQLite pass; the PostgreSQL pass kills a 20k-item job, twice all the same
N_ITEMS = 20_000 if os.environ.get("LABELLOOP_TEST_DB") == "postgres" else 50_000
CHUNK = 2_500


def _world(settings) -> str:  # noqa: ANN001
    """Project "big": N_ITEMS pool items with cached vectors; returns an admin token."""
    key = encoder_for(settings).key
    rng = np.random.default_rng(0)
    with open_session(settings.db_url) as s:
        project = create_project(s, "big", LABELS)
        source = IngestBatch(project_id=project.id, source="t", source_digest="-",
                             split="pool")
        s.add(source)
        s.flush()
        s.execute(insert(Item), [
            {"project_id": project.id, "text": f"message {i}", "content_hash": f"{i:064d}",
             "split": "pool", "source": "t", "source_row": i, "ingest_batch_id": source.id,
             "meta": {}} for i in range(N_ITEMS)])
        ids = list(s.scalars(select(Item.id).order_by(Item.id)))
        for start in range(0, N_ITEMS, 10_000):
            x = rng.normal(size=(min(10_000, N_ITEMS - start), 384)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            s.execute(insert(Embedding), [
                {"item_id": item_id, "encoder": key, "dim": 384, "vector": v.tobytes()}
                for item_id, v in zip(ids[start:start + 10_000], x, strict=True)])
        token = create_token(s, bootstrap_admin(s), "t")[1]
    dispose_engines(settings.db_url)
    return token


def _on_disk(settings, job_id: int) -> tuple[Job, int, int]:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        job = s.get(Job, job_id)
        n = s.scalar(select(func.count(Prediction.id))) or 0
        distinct = s.scalar(select(func.count(func.distinct(Prediction.item_id)))) or 0
    dispose_engines(settings.db_url)
    assert job is not None
    return job, n, distinct


def _follow(base: str, token: str, path: str, until, timeout_s: float = 300):  # noqa: ANN001
    deadline = time.time() + timeout_s
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        while time.time() < deadline:
            job = c.get(path).json()
            if until(job):
                return job
            time.sleep(0.02)
    raise AssertionError(f"job did not get there in {timeout_s} s: {job}")


def test_killed_prelabel_job_resumes_and_predicts_each_item_once(settings):
    token = _world(settings)
    path = None
    for kill_after in (N_ITEMS // 5, 3 * N_ITEMS // 5):  # 10k and 30k of 50k
        port = free_port()
        server = server_process(settings, port, {"LABELLOOP_JOB_CHUNK": str(CHUNK),
                                                 "LABELLOOP_JOB_STALE_S": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            if path is None:
                r = httpx.post(f"{base}/projects/big/prelabel", timeout=60,
                               headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 202, r.text
                path, job_id = r.headers["Location"], r.json()["id"]
            _follow(base, token, path, lambda j, k=kill_after: j["done"] >= k)
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait()
        job, n, distinct = _on_disk(settings, job_id)
        assert job.status == JobStatus.RUNNING and kill_after <= job.done < N_ITEMS
        assert n == distinct == job.done  # the progress on record is what is on disk

    port = free_port()
    server = server_process(settings, port, {"LABELLOOP_JOB_CHUNK": str(CHUNK),
                                                 "LABELLOOP_JOB_STALE_S": "1"})
    try:
        done = _follow(f"http://127.0.0.1:{port}", token, path,
                       lambda j: j["status"] in ("done", "failed", "cancelled"))
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert done["status"] == "done", done
    assert done["attempts"] == 3 and done["done"] == done["total"] == N_ITEMS
    job, n, distinct = _on_disk(settings, job_id)
    assert n == distinct == N_ITEMS  # every item predicted, once
