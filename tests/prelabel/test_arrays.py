"""The compact prediction store (``prelabel.arrays``): blocks written with the rows, read
without JSON, kept in step across processes and rollbacks; vectors read on demand."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.api.app import create_app
from labelloop.ingest.service import ingest_file
from labelloop.prelabel import arrays
from labelloop.prelabel.arrays import StoredVectors, lookup, model_arrays
from labelloop.prelabel.service import (
    active_model,
    encoder_for,
    pool_predictions,
    prelabel_project,
    store_predictions,
)
from labelloop.selection.strategies import Pool, get_strategy
from labelloop.store.db import open_session
from labelloop.store.models import Batch, Item, Prediction, PredictionBlock, Task
from tests.api.conftest import admin_token, bearer


def test_blocks_hold_what_the_rows_hold(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv)
        prelabel_project(s, p, settings, limit=100)  # two stores: two sets of blocks
        prelabel_project(s, p, settings)
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        model = active_model(s, p, encoder_for(settings))
        rows = s.execute(select(Prediction.item_id, Prediction.probs)
                         .where(Prediction.model_version_id == model.id)
                         .order_by(Prediction.item_id)).all()
        assert s.scalar(select(func.count()).select_from(PredictionBlock)) == 2
        got = model_arrays(s, model, p.labels)
        want = np.array([[probs[name] for name in p.labels] for _, probs in rows])
        assert got.item_ids.tolist() == [item_id for item_id, _ in rows]
        assert np.abs(got.probs - want).max() < 1e-5  # rows keep 5 decimals, blocks float32
        # another label order (a label added, two swapped): columns follow the names
        other = [p.labels[1], p.labels[0], "new", *p.labels[2:]]
        moved = pool_predictions(s, model, got.item_ids[:5], other)
        assert np.array_equal(moved[:, 0], got.probs[:5, 1])
        assert np.array_equal(moved[:, 2], np.zeros(5, dtype=np.float32))


def test_reads_only_new_blocks_and_never_keeps_rolled_back_ones(settings, project_name,
                                                                 pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv)
        prelabel_project(s, p, settings, limit=50)
        ids = list(s.scalars(select(Item.id).order_by(Item.id)))
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        model = active_model(s, p, encoder_for(settings))
        assert len(model_arrays(s, model, p.labels).item_ids) == 50
    # A store that rolls back: read inside its own unit of work, it is seen there, but
    # no later reader sees it, though the process had read it once.
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        model = active_model(s, p, encoder_for(settings))
        store_predictions(s, model, ids[50:60], np.full((10, len(p.labels)), 0.1), p.labels)
        assert len(model_arrays(s, model, p.labels).item_ids) == 60
        s.rollback()
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        model = active_model(s, p, encoder_for(settings))
        seen = model_arrays(s, model, p.labels)
        assert len(seen.item_ids) == 50
        probs, found = lookup(seen, np.array(ids[48:52]))
        assert found.tolist() == [True, True, False, False]
        assert np.isnan(probs[2:]).all() and not np.isnan(probs[:2]).any()
    # the next chunk commits: a reader fetches that block only, after the cached ones
    with open_session(settings.db_url) as s:
        prelabel_project(s, get_project(s, project_name), settings, limit=100)
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        model = active_model(s, p, encoder_for(settings))
        before = arrays._cache[(str(s.get_bind().url), model.id)].blocks
        seen = model_arrays(s, model, p.labels)
        assert len(seen.item_ids) == 150 and len(seen.blocks - before) == 1
        assert np.all(np.diff(seen.item_ids) > 0)


def test_default_strategy_reads_only_its_candidates_vectors():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5_000, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    probs = rng.dirichlet(np.ones(4), size=5_000).astype(np.float32)
    read: list[int] = []

    def fetch(ids: list[int]) -> np.ndarray:
        read.extend(ids)
        return emb[np.asarray(ids, dtype=np.int64) - 1000]

    lazy = StoredVectors(np.arange(1000, 6000), 16, fetch)
    strategy = get_strategy("default")
    picks = strategy.select(Pool(probs=probs, embeddings=lazy), 20,
                            np.random.default_rng(3))
    assert len(read) == 200  # ten candidates per pick, not 5,000 rows
    same = strategy.select(Pool(probs=probs, embeddings=emb), 20, np.random.default_rng(3))
    assert picks.tolist() == same.tolist()
    read.clear()
    cold = strategy.select(Pool(probs=None, embeddings=lazy), 20, np.random.default_rng(3))
    assert cold.tolist() == strategy.select(Pool(probs=None, embeddings=emb), 20,
                                            np.random.default_rng(3)).tolist()


def test_next_batch_leaves_a_large_unlabeled_remainder_to_a_job(settings, project_name,
                                                               pool_csv):
    """Past ``prelabel_inline_max`` items without a pre-label, the request says to run a
    pre-labeling job (409, where=pool) and stores nothing; after the job, it works."""
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), pool_csv)
    app = create_app(settings.model_copy(update={"prelabel_inline_max": 100}))
    client = TestClient(app, headers=bearer(admin_token(settings)))
    r = client.post(f"/projects/{project_name}/batches", json={"size": 10})
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert detail["where"] == "pool" and "pre-label" in detail["message"]
    assert "/prelabel" in detail["message"]
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Prediction)) == 0
        assert s.scalar(select(func.count()).select_from(Batch)) == 0
    with open_session(settings.db_url) as s:  # as the job does, in chunks
        p = get_project(s, project_name)
        prelabel_project(s, p, settings, limit=180)
    r = client.post(f"/projects/{project_name}/batches", json={"size": 10})
    assert r.status_code == 201, r.text  # the 60 left are pre-labeled inline
    with open_session(settings.db_url, read_only=True) as s:
        n_items = s.scalar(select(func.count()).select_from(Item))
        assert n_items == 240  # 300 rows, 60 duplicates
        assert s.scalar(select(func.count()).select_from(Prediction)) == n_items
        assert s.scalar(select(func.count()).select_from(Task)) == 10


@pytest.mark.parametrize("n", [0, 3])
def test_lookup_on_empty_and_small(n):
    found = arrays.ModelArrays(np.arange(n, dtype=np.int64) * 2,
                               np.ones((n, 2), dtype=np.float32), ["a", "b"],
                               frozenset())
    probs, hit = lookup(found, np.array([0, 1, 2, 4, 9]))
    assert hit.tolist() == [n > 0, False, n > 1, n > 2, False]
    assert np.isnan(probs[~hit]).all()


def test_a_server_reads_the_predictions_at_start(settings, project_name, pool_csv):
    """``labelloop serve`` warms its cache in a thread: /health says "warming", then
    "warm", and the active model's arrays are then in memory before any next-batch."""
    import time

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv)
        prelabel_project(s, p, settings)
        model_id, n = p.active_model_id, s.scalar(select(func.count(Item.id)))
    arrays._cache.clear()
    app = create_app(settings.model_copy(update={"job_worker": False}))
    assert TestClient(app).get("/health").json()["caches"] == "warming"  # no lifespan yet
    with TestClient(app) as client:
        deadline = time.time() + 60
        while client.get("/health").json()["caches"] == "warming" and time.time() < deadline:
            time.sleep(0.05)
        assert client.get("/health").json() == {"status": "ok", "caches": "warm"}
        key = next(k for k in arrays._cache if k[1] == model_id)
        assert len(arrays._cache[key].item_ids) == n
    cold = create_app(settings.model_copy(update={"job_worker": False, "warm_caches": False}))
    with TestClient(cold) as client:
        assert client.get("/health").json()["caches"] == "cold"
