"""Ingest as a job: a large upload returns 202 at once and a worker stores it in committed
chunks; killed twice mid-way, it resumes and stores every row exactly once; a broken file
fails the job before anything is written."""

from __future__ import annotations

import json
import signal

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labelloop.api.app import create_app
from labelloop.core.enums import JobStatus
from labelloop.jobs.service import wait
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import IngestBatch, Item, Job
from tests.api.conftest import admin_token, bearer
from tests.conftest import free_port, server_process
from tests.jobs.test_job_fault import _follow

N_ROWS = 60_000
CHUNK = 2_000


def _big_file(path, n: int = N_ROWS):  # noqa: ANN001
    """n JSONL rows: every 100th repeats an earlier text, every 1,000th has no text."""
    with path.open("w") as fh:
        for i in range(n):
            text = "" if i % 1000 == 999 else f"message {i - 50 if i % 100 == 99 else i}"
            fh.write(json.dumps({"text": text, "id": f"r{i}"}) + "\n")
    bad = n // 1000
    dup = sum(1 for i in range(n) if i % 100 == 99 and i % 1000 != 999)
    return path, n - bad - dup, dup, bad


def _stored(settings):  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        n = s.scalar(select(func.count(Item.id))) or 0
        distinct = s.scalar(select(func.count(func.distinct(Item.content_hash)))) or 0
        batches = list(s.scalars(select(IngestBatch)))
        jobs = list(s.scalars(select(Job)))
    dispose_engines(settings.db_url)
    return n, distinct, batches, jobs


def test_killed_ingest_job_resumes_and_stores_each_row_once(settings, tmp_path):
    path, accepted, dup, bad = _big_file(tmp_path / "big.jsonl")
    token = admin_token(settings)
    env = {"LABELLOOP_INGEST_CHUNK": str(CHUNK), "LABELLOOP_JOB_STALE_S": "1"}
    job_path = job_id = None
    for kill_after in (4 * CHUNK, 14 * CHUNK):
        port = free_port()
        server = server_process(settings, port, env)
        base = f"http://127.0.0.1:{port}"
        try:
            if job_path is None:
                auth = {"Authorization": f"Bearer {token}"}
                assert httpx.post(f"{base}/projects", headers=auth, json={
                    "name": "big", "labels": ["a", "b"]}).status_code == 201
                with path.open("rb") as fh:
                    r = httpx.post(f"{base}/projects/big/ingest", headers=auth,
                                   params={"background": "true"},
                                   files={"file": ("big.jsonl", fh)}, timeout=60)
                assert r.status_code == 202, r.text
                assert r.json()["kind"] == "ingest"
                job_path, job_id = r.headers["Location"], r.json()["id"]
            _follow(base, token, job_path, lambda j, k=kill_after: j["done"] >= k)
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait()
        n, distinct, batches, jobs = _stored(settings)
        job = next(j for j in jobs if j.id == job_id)
        assert job.status == JobStatus.RUNNING and kill_after <= job.done < N_ROWS
        assert job.total == N_ROWS  # the scan counted the rows before the first chunk
        assert len(batches) == 1 and batches[0].n_rows == job.done  # on record = on disk
        assert n == distinct == batches[0].n_accepted
    port = free_port()
    server = server_process(settings, port, env)
    try:
        done = _follow(f"http://127.0.0.1:{port}", token, job_path,
                       lambda j: j["status"] in ("done", "failed", "cancelled"))
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert done["status"] == "done", done
    assert done["attempts"] == 3 and done["done"] == done["total"] == N_ROWS
    result = done["result"]
    assert (result["n_rows"], result["n_accepted"], result["n_duplicates"],
            result["n_rejected"]) == (N_ROWS, accepted, dup, bad)
    assert result["rejections"][0] == {"row": 1000, "field": "text", "reason": "text is empty"}
    n, distinct, batches, _ = _stored(settings)
    assert n == distinct == accepted and len(batches) == 1
    assert not list((settings.home / "uploads").iterdir())  # the kept upload is gone


def test_large_upload_becomes_a_job_and_a_broken_one_writes_nothing(settings, tmp_path):
    client = TestClient(create_app(settings.model_copy(update={"ingest_inline_max_bytes": 1000})),
                        headers=bearer(admin_token(settings)))
    assert client.post("/projects", json={"name": "p", "labels": ["a", "b"]}).status_code == 201
    path, accepted, _, _ = _big_file(tmp_path / "f.jsonl", n=3_000)
    small = tmp_path / "small.jsonl"
    small.write_text('{"text": "hello"}\n')
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet" * 100)
    with client:  # the server's worker runs the jobs
        with small.open("rb") as fh:  # under the limit: stored in the request
            r = client.post("/projects/p/ingest", files={"file": ("small.jsonl", fh)})
        assert r.status_code == 200 and r.json()["n_accepted"] == 1
        with path.open("rb") as fh:
            r = client.post("/projects/p/ingest", files={"file": ("f.jsonl", fh)})
        assert r.status_code == 202, r.text
        job = wait(settings, r.json()["id"], timeout_s=120)
        assert job.status == "done", job.last_error
        assert job.result["n_accepted"] == accepted
        with broken.open("rb") as fh:
            r = client.post("/projects/p/ingest", files={"file": ("broken.parquet", fh)})
        assert r.status_code == 202, r.text
        failed = wait(settings, r.json()["id"], timeout_s=120)
    assert failed.status == "failed"
    assert "ValidationError" in failed.last_error and "upload:broken.parquet" in failed.last_error
    assert not list(settings.uploads_dir.iterdir())  # neither upload is kept after its job
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Item.id))) == accepted + 1
        assert s.scalar(select(func.count(IngestBatch.id))) == 2  # none for the broken file


def test_cli_ingest_as_a_job_and_a_missing_file(settings, tmp_path, monkeypatch):
    """``labelloop ingest --job`` runs the ingest job here and prints it; a file that is
    not there is exit 2, and nothing is queued or stored."""
    from typer.testing import CliRunner

    from labelloop.cli import app as cli

    monkeypatch.setenv("LABELLOOP_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("LABELLOOP_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    labels = tmp_path / "labels.json"
    labels.write_text('["a", "b"]')
    assert runner.invoke(cli, ["create-project", "p", "--labels", f"@{labels}"]).exit_code == 0
    out = runner.invoke(cli, ["ingest", "p", str(tmp_path / "nope.jsonl"), "--job"])
    assert out.exit_code == 2 and "nope.jsonl" in out.output.replace("\n", "")  # (wrapped)
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Job.id))) == 0
    path, accepted, _, _ = _big_file(tmp_path / "f.jsonl", n=1_500)
    out = runner.invoke(cli, ["ingest", "p", str(path), "--job"])
    assert out.exit_code == 0, out.output
    with open_session(settings.db_url, read_only=True) as s:
        job = s.scalars(select(Job)).one()
        assert (job.kind, job.status, job.done, job.total) == ("ingest", "done", 1_500, 1_500)
        assert s.scalar(select(func.count(Item.id))) == accepted
