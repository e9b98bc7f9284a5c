"""Ray: embedding and pre-labeling through a pool of Ray actors on a local cluster
(``ray.init(num_cpus=2)``) give the same vectors and predictions as the single-process
path."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.service import encoder_for, prelabel_project
from labelloop.store.db import open_session
from labelloop.store.models import Item, Prediction
from tests.conftest import LABELS, banking_rows, write_csv

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.sqlite_only  # Ray is what is tested
def test_ray_embeddings_equal_the_single_process_ones(settings, local_ray):
    from labelloop.prelabel.distributed import embed_texts

    texts = [r["text"] for r in banking_rows("train", LABELS, 12)]
    local = encoder_for(settings).encode(texts, batch_size=settings.embed_batch_size)
    distributed = embed_texts(texts, settings.model_copy(update={"embed_batch_size": 16}))
    assert distributed.shape == local.shape == (96, 384)
    np.testing.assert_allclose(distributed, local, atol=1e-5)


@pytest.mark.sqlite_only  # Ray is what is tested
def test_prelabel_through_ray_predicts_what_one_process_predicts(settings, project_name,
                                                                 tmp_path, local_ray):
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 10),
                     fields=("text",))
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), pool)
        report = prelabel_project(s, get_project(s, project_name),
                                  settings.model_copy(update={"compute": "ray"}))
        assert report.n_new == 80
        by_ray = dict(s.execute(select(Prediction.item_id, Prediction.probs)).all())
        texts = dict(s.execute(select(Item.id, Item.text)).all())
    # the single-process path, on the same texts
    from labelloop.prelabel.service import zero_shot_head

    encoder = encoder_for(settings)
    with open_session(settings.db_url, read_only=True) as s:
        head = zero_shot_head(get_project(s, project_name), encoder)
    ids = sorted(texts)
    local = head.predict_proba(encoder.encode([texts[i] for i in ids]))
    for row, item_id in zip(local, ids, strict=True):
        ray_probs = [by_ray[item_id][label] for label in LABELS]
        np.testing.assert_allclose(ray_probs, row, atol=1e-4)
        assert int(np.argmax(ray_probs)) == int(np.argmax(row))
