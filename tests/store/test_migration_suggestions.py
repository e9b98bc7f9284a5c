"""Migration 0005 keys every stored prediction's probabilities by label name, and its
downgrade puts them back in the project's label order."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from labelloop.store.db import alembic_config, dispose_engines, open_session
from labelloop.store.models import Prediction

T0 = "2026-12-01 10:00:00+00:00"


def _database_at_0004(url: str) -> None:
    """Two projects with different label orders, each item predicted by one model."""
    command.upgrade(alembic_config(url), "0004")
    engine = create_engine(url)
    with engine.begin() as c:
        for pid, labels in ((1, ["a", "b", "c"]), (2, ["z", "y"])):
            c.execute(text(
                "INSERT INTO projects (id, name, task_type, labels, questions, "
                "label_descriptions, critical_labels, guideline_text, guideline_version, "
                "overlap, critical_overlap, confidence_threshold, critical_plausibility, "
                "audit_share, target_accuracy, min_agreement, gold_share, gold_min_accuracy, "
                "calibration_share, created_at) VALUES (:id, :name, 'text-classification', "
                ":labels, '[]', '{}', '[]', '', 1, 1, 2, 0.9, 0.2, 0.05, 0.98, 0.6, 0.1, 0.8, "
                "0.1, :t)"), {"id": pid, "name": f"p{pid}", "labels": json.dumps(labels),
                              "t": T0})
            c.execute(text(
                "INSERT INTO ingest_batches (id, project_id, source, source_digest, split, "
                "n_rows, n_accepted, n_duplicates, n_rejected, rejections, created_at) VALUES "
                "(:id, :id, 'f.csv', 'd', 'pool', 1, 1, 0, 0, '[]', :t)"), {"id": pid, "t": T0})
            c.execute(text(
                "INSERT INTO items (id, project_id, text, content_hash, split, source, "
                "source_row, ingest_batch_id, meta, created_at) VALUES "
                "(:id, :id, 'x', :h, 'pool', 'f.csv', 1, :id, '{}', :t)"),
                {"id": pid, "h": f"h{pid}", "t": T0})
            c.execute(text(
                "INSERT INTO model_versions (id, project_id, name, kind, encoder, metrics, "
                "created_at) VALUES (:id, :id, 'zero-shot/m', 'zero-shot', 'e', '{}', :t)"),
                {"id": pid, "t": T0})
        c.execute(text(
            "INSERT INTO predictions (item_id, model_version_id, label, confidence, probs, "
            "created_at) VALUES (1, 1, 'b', 0.7, '[0.2, 0.7, 0.1]', :t), "
            "(2, 2, 'z', 0.6, '[0.6, 0.4]', :t)"), {"t": T0})
    engine.dispose()


def test_probabilities_become_keyed_by_label_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _check_round_trip(url)
    dispose_engines(url)


@pytest.mark.postgres
def test_probabilities_become_keyed_by_label_on_postgres(pg_url):
    _check_round_trip(pg_url)


def _check_round_trip(old_url: str) -> None:
    _database_at_0004(old_url)
    command.upgrade(alembic_config(old_url), "0005")
    with open_session(old_url, read_only=True) as s:
        probs = dict(s.execute(select(Prediction.item_id, Prediction.probs)).all())
        first = s.scalar(select(Prediction).where(Prediction.item_id == 1))
        assert first is not None
        assert first.vector(["c", "b", "a", "new"]) == [0.1, 0.7, 0.2, 0.0]
    assert probs == {1: {"a": 0.2, "b": 0.7, "c": 0.1}, 2: {"z": 0.6, "y": 0.4}}

    command.downgrade(alembic_config(old_url), "0004")
    engine = create_engine(old_url)
    with engine.connect() as c:
        rows = dict(c.execute(text("SELECT item_id, probs FROM predictions")).all())
    engine.dispose()
    assert {k: json.loads(v) if isinstance(v, str) else v for k, v in rows.items()} == {
        1: [0.2, 0.7, 0.1], 2: [0.6, 0.4]}


def test_migration_0007_writes_the_blocks_of_existing_predictions(tmp_path):
    """Predictions stored before 0007 get their compact blocks, in the project's label
    order, so next-batch reads them like new ones."""
    from labelloop.prelabel.service import pool_predictions
    from labelloop.store.models import ModelVersion, PredictionBlock

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _database_at_0004(url)
    command.upgrade(alembic_config(url), "head")
    with open_session(url, read_only=True) as s:
        assert len(list(s.scalars(select(PredictionBlock)))) == 2
        first, second = s.get(ModelVersion, 1), s.get(ModelVersion, 2)
        assert pool_predictions(s, first, [1], ["a", "b", "c"]).tolist() == [
            [pytest.approx(0.2), pytest.approx(0.7), pytest.approx(0.1)]]
        assert pool_predictions(s, second, [2, 1], ["y", "z"])[0].tolist() == [
            pytest.approx(0.4), pytest.approx(0.6)]
    command.downgrade(alembic_config(url), "0006")
    engine = create_engine(url)
    with engine.connect() as c:
        assert "prediction_blocks" not in {r[0] for r in c.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'"))}
    engine.dispose()
    dispose_engines(url)
