"""Gold items: mixed into each annotator's tasks unannounced, scored per annotator; an
annotator below the bar is flagged and their open tasks go to the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.annotate.service import GOLD_SPLIT, next_tasks
from labelloop.core.errors import ConflictError, ValidationError
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.quality.annotators import reinstate_annotator
from labelloop.quality.gold_items import ingest_gold
from labelloop.quality.reports import annotator_scorecards
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Annotator, Assignment, Batch, FinalLabel, Item
from tests.conftest import LABELS, banking_rows, write_csv


def loop_with_gold(settings, project_name: str, tmp_path: Path, *, pool_per_label: int = 8,
                   gold_per_label: int = 4, **knobs) -> dict[str, str]:
    """An unlabeled pool and expert-labeled gold items; returns the true label by content
    hash (the simulated annotators' oracle)."""
    pool = banking_rows("train", LABELS, pool_per_label)
    gold = banking_rows("test", LABELS, gold_per_label, seed=1)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        for key, value in {"gold_share": 0.2, "critical_overlap": 1, **knobs}.items():
            setattr(p, key, value)
        ingest_file(s, p, write_csv(tmp_path / "pool.csv", pool, fields=("text",)))
        ingest_gold(s, p, settings, write_csv(tmp_path / "gold.csv", gold),
                    label_field="category")
    return {content_hash(r["text"]): r["category"] for r in pool + gold}


def wrong(label: str) -> str:
    return LABELS[(LABELS.index(label) + 1) % len(LABELS)]


def gold_ids(s) -> set[int]:  # noqa: ANN001
    return set(s.scalars(select(Item.id).where(Item.split == GOLD_SPLIT)))


def test_gold_is_mixed_in_unannounced_and_scored(settings, project_name, tmp_path):
    truth = loop_with_gold(settings, project_name, tmp_path)
    with open_session(settings.db_url) as s:
        batch_id = next_batch(s, get_project(s, project_name), settings, size=40, seed=0).batch_id
    handouts = []
    while True:
        with open_session(settings.db_url) as s:
            views = next_tasks(s, get_project(s, project_name), "ana", limit=10)
            if not views:
                break
            handouts.append(views)
            for v in views:
                submit(s, v.task_id, "ana", truth[content_hash(v.text)], seconds_spent=3.0)
    with open_session(settings.db_url) as s:
        gold = gold_ids(s)
        views = [v for h in handouts for v in h]
        is_gold = [v.item_id in gold for v in views]
        # 40 real tasks and gold at the project's share (0.2), in every hand-out
        assert len(views) == 50 and sum(is_gold) == 10
        assert all(sum(v.item_id in gold for v in h) == 2 for h in handouts)
        # unannounced: a gold task reads like any other
        for v in views:  # gold reasons are ones real tasks have too
            assert v.reason in ("safety-critical", "low-confidence", "calibration")
            if v.item_id in gold:
                assert v.reason in ("safety-critical", "low-confidence")
            assert v.prelabel in LABELS and v.prelabel_confidence is not None
            # with a suggestion from a model, shown like any other's
            assert v.suggestion is not None and v.suggestion.value == {"label": v.prelabel}
            assert abs(v.suggestion.score - v.prelabel_confidence) < 1e-4
        assert len({tuple(sorted(v.to_dict())) for v in views}) == 1
        positions = {i for h in handouts for i, v in enumerate(h) if v.item_id in gold}
        assert len(positions) > 2  # not always in the same slots

        batch = s.get(Batch, batch_id)
        assert batch.status == "passed"
        qa = batch.qa
        assert qa["n_tasks"] == 40 and qa["n_gold_tasks"] == 10 and qa["n_annotations"] == 40
        assert qa["gold_accuracy"] == 1.0 and qa["gold"]["per_annotator"]["ana"]["n"] == 10
        # gold answers are scored, never turned into final labels
        assert s.scalar(select(func.count()).select_from(FinalLabel)) == 40
        assert not gold & set(s.scalars(select(FinalLabel.item_id)))
        card = annotator_scorecards(s, get_project(s, project_name))[0]
        assert card["annotator"] == "ana" and card["status"] == "active"
        assert card["gold"]["n"] == 10 and card["gold"]["accuracy"] == 1.0
        assert card["n_answers"] == 50 and card["open_tasks"] == 0


def test_low_accuracy_annotator_is_flagged_and_their_tasks_go_to_others(
        settings, project_name, tmp_path):
    truth = loop_with_gold(settings, project_name, tmp_path)
    with open_session(settings.db_url) as s:
        next_batch(s, get_project(s, project_name), settings, size=20, seed=0)
    with open_session(settings.db_url) as s:
        views = next_tasks(s, get_project(s, project_name), "bob", limit=30)
        gold = gold_ids(s)
    bob_gold = [v for v in views if v.item_id in gold]
    bob_real = {v.task_id for v in views if v.item_id not in gold}
    assert len(bob_gold) == 5 and len(bob_real) == 20
    for v in bob_gold:  # bob gets every gold item wrong
        with open_session(settings.db_url) as s:
            submit(s, v.task_id, "bob", wrong(truth[content_hash(v.text)]))

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        row = s.scalar(select(Annotator).where(Annotator.name == "bob"))
        assert row.status == "flagged"
        assert row.reason.startswith("gold accuracy 0.00 < 0.80 on 5 gold answers")
        assert s.scalar(select(func.count()).select_from(Assignment).where(
            Assignment.annotator == "bob", Assignment.status == "open")) == 0
        with pytest.raises(ConflictError, match="flagged for recalibration"):
            next_tasks(s, p, "bob")
        with pytest.raises(ConflictError, match="flagged"):
            submit(s, min(bob_real), "bob", LABELS[0])
        card = {c["annotator"]: c for c in annotator_scorecards(s, p)}["bob"]
        assert card["status"] == "flagged" and card["gold"]["accuracy"] == 0.0
        assert card["gold"]["confusion"]  # which labels bob confuses
    with open_session(settings.db_url) as s:
        carol = next_tasks(s, get_project(s, project_name), "carol", limit=50)
        # bob's unanswered tasks went to carol
        assert bob_real <= {v.task_id for v in carol}
    with open_session(settings.db_url) as s:
        reinstate_annotator(s, get_project(s, project_name), "bob", "lead", "retrained")
        assert next_tasks(s, get_project(s, project_name), "bob") == []  # may work again


def test_gold_rows_need_a_label(settings, project_name, tmp_path):
    rows = banking_rows("test", LABELS, 2)
    rows[3]["category"] = ""
    with open_session(settings.db_url) as s:
        before = s.scalar(select(func.count()).select_from(Item))
    with pytest.raises(ValidationError, match=r"rows \[4\] have none") as err, \
            open_session(settings.db_url) as s:
        ingest_gold(s, get_project(s, project_name), settings,
                    write_csv(tmp_path / "gold.csv", rows), label_field="category")
    assert err.value.where == "category"
    with open_session(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == before
