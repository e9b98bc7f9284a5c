"""Exports as jobs: a version written to a file on the server with progress, downloaded
when done; bad requests refused before any job is queued."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
from sqlalchemy import func, select

from labelloop.jobs.service import wait
from labelloop.store.db import open_session
from labelloop.store.models import Job
from tests.conftest import LABELS, banking_rows, write_csv


def test_export_job_writes_a_file_to_download(client, settings, tmp_path):
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    rows = write_csv(tmp_path / "l.csv", banking_rows("train", LABELS, 5))
    with rows.open("rb") as fh:
        assert client.post("/projects/bank/ingest", params={"label_field": "category"},
                           files={"file": ("l.csv", fh)}).status_code == 200
    version = client.post("/projects/bank/versions", json={"split": "train"}).json()
    with client:  # the server's worker runs the job
        r = client.post(f"/projects/bank/versions/{version['name']}/exports",
                        params={"format": "parquet"})
        assert r.status_code == 202, r.text
        early = client.get(f"/projects/bank/jobs/{r.json()['id']}/download")
        assert early.status_code in (200, 409)  # 409 while it runs
        job = wait(settings, r.json()["id"], timeout_s=120)
    assert job.status == "done", job.last_error
    assert job.done == job.total == version["n_rows"] > 0
    got = client.get(f"/projects/bank/jobs/{job.id}/download")
    assert got.status_code == 200
    assert f"bank-{version['name']}.parquet" in got.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(got.content))
    streamed = client.get(f"/projects/bank/versions/{version['name']}/export",
                          params={"format": "parquet"})
    assert table.to_pylist() == pq.read_table(io.BytesIO(streamed.content)).to_pylist()
    assert table.num_rows == version["n_rows"]
    assert not list((settings.export_dir).glob("*.part"))  # nothing half-written left


def test_bad_export_requests_queue_nothing(client, settings, team):
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    r = client.post("/projects/bank/versions/nope/exports")
    assert r.status_code == 404 and r.json()["detail"]["where"] == "version"
    r = client.post("/projects/bank/versions/nope/exports", params={"format": "xlsx"})
    assert r.status_code == 422
    me = team.headers("ana", "annotator", "bank")
    assert client.post("/projects/bank/versions/nope/exports", headers=me).status_code == 403
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Job.id))) == 0
    r = client.get("/projects/bank/jobs/999/download")
    assert r.status_code == 404
