"""Migration 0004 (data model v2) upgrades a database made with the previous schema and keeps
every item, answer, label and version; annotators' names become users."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from labelloop.store.db import alembic_config, dispose_engines, open_session
from labelloop.store.labels import label_history
from labelloop.store.models import (
    Annotation,
    DatasetRow,
    DatasetVersion,
    FinalLabel,
    Item,
    LabelEvent,
    Membership,
    Project,
    User,
)

T0 = "2026-11-30 10:00:00+00:00"


def _old_database(url: str) -> None:
    """Schema 0003 with a project, 6 items, a closed batch of 3 answered tasks (two
    annotators), 3 final labels and a frozen version: rows as the previous code wrote them."""
    command.upgrade(alembic_config(url), "0003")
    engine = create_engine(url)
    labels = json.dumps(["a", "b"])
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO projects (id, name, task_type, labels, label_descriptions, "
            "critical_labels, guideline_text, guideline_version, overlap, critical_overlap, "
            "confidence_threshold, critical_plausibility, audit_share, target_accuracy, "
            "min_agreement, gold_share, gold_min_accuracy, calibration_share, created_at) "
            "VALUES (1, 'old', 'text-classification', :labels, '{}', '[]', '', 1, 1, 2, "
            "0.9, 0.2, 0.05, 0.98, 0.6, 0.1, 0.8, 0.1, :t)"), {"labels": labels, "t": T0})
        c.execute(text(
            "INSERT INTO ingest_batches (id, project_id, source, source_digest, split, n_rows, "
            "n_accepted, n_duplicates, n_rejected, rejections, created_at) VALUES "
            "(1, 1, 'f.csv', 'd', 'pool', 6, 6, 0, 0, '[]', :t)"), {"t": T0})
        for i in range(1, 7):
            c.execute(text(
                "INSERT INTO items (id, project_id, text, content_hash, split, source, "
                "source_row, ingest_batch_id, meta, created_at) VALUES "
                "(:i, 1, :text, :h, 'pool', 'f.csv', :i, 1, '{}', :t)"),
                {"i": i, "text": f"text  {i}", "h": f"h{i}", "t": T0})
        c.execute(text(
            "INSERT INTO batches (id, project_id, strategy, guideline_version, status, "
            "n_auto_accepted, qa, created_at) VALUES (1, 1, 'default', 1, 'passed', 0, '{}', "
            ":t)"), {"t": T0})
        for i in range(1, 4):
            c.execute(text(
                "INSERT INTO tasks (id, batch_id, item_id, reason, required, prelabel, status) "
                "VALUES (:i, 1, :i, 'low-confidence', 1, 'a', 'done')"), {"i": i})
            who = "ana" if i < 3 else "bo"
            c.execute(text(
                "INSERT INTO assignments (task_id, annotator, status, created_at) VALUES "
                "(:i, :who, 'submitted', :t)"), {"i": i, "who": who, "t": T0})
            c.execute(text(
                "INSERT INTO annotations (task_id, item_id, annotator, label, "
                "accepted_prelabel, guideline_version, created_at) VALUES "
                "(:i, :i, :who, :lb, true, 1, :t)"), {"i": i, "who": who, "lb": "ab"[i % 2],
                                                      "t": T0})
            c.execute(text(
                "INSERT INTO final_labels (item_id, batch_id, label, origin, annotators, "
                "agreement, posterior, guideline_version, updated_at) VALUES "
                "(:i, 1, :lb, 'human', :ann, 1.0, '{}', 1, :t)"),
                {"i": i, "lb": "ab"[i % 2], "ann": json.dumps([who]), "t": T0})
        c.execute(text(
            "INSERT INTO dataset_versions (id, project_id, name, split, digest, n_rows, "
            "label_counts, batch_ids, created_at) VALUES (1, 1, 'train-v1', 'train', 'x', 3, "
            "'{}', '[1]', :t)"), {"t": T0})
        for i in range(1, 4):
            c.execute(text(
                "INSERT INTO dataset_rows (version_id, item_id, label, lineage) VALUES "
                "(1, :i, :lb, '{}')"), {"i": i, "lb": "ab"[i % 2]})
    engine.dispose()


def _check_upgraded(url: str) -> None:
    with open_session(url) as s:  # get_engine migrates to head
        assert s.scalar(select(func.count(Item.id))) == 6
        assert [it.text for it in s.scalars(select(Item).order_by(Item.id))][0] == "text  1"
        answers = list(s.scalars(select(Annotation).order_by(Annotation.id)))
        assert [(a.annotator, a.label, a.value, a.status) for a in answers] == [
            ("ana", "b", {"label": "b"}, "submitted"), ("ana", "a", {"label": "a"}, "submitted"),
            ("bo", "b", {"label": "b"}, "submitted")]
        finals = {f.item_id: (f.label, f.origin, f.annotators) for f in s.scalars(
            select(FinalLabel))}
        assert finals == {1: ("b", "human", ["ana"]), 2: ("a", "human", ["ana"]),
                          3: ("b", "human", ["bo"])}
        history = label_history(s, 1)
        assert [(e.reason, e.from_label, e.to_label) for e in history] == [
            ("import", None, "b")]
        v = s.get(DatasetVersion, 1)
        assert v is not None and v.name == "train-v1"
        assert s.scalar(select(func.count(DatasetRow.id))) == 3
        users = {u.name: u.role for u in s.scalars(select(User))}
        assert users == {"ana": "annotator", "bo": "annotator"}
        assert s.scalar(select(func.count(Membership.id))) == 2
        p = s.get(Project, 1)
        assert p is not None and p.questions == [
            {"name": "label", "kind": "single-label", "labels": ["a", "b"]}]
        assert s.scalar(select(func.count(LabelEvent.id))) == 3


def test_previous_schema_upgrades_and_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _old_database(url)
    _check_upgraded(url)
    dispose_engines(url)


@pytest.mark.postgres
def test_previous_schema_upgrades_on_postgres(pg_url):
    _old_database(pg_url)
    _check_upgraded(pg_url)
