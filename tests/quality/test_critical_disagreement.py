"""A safety-critical disagreement is never settled by vote to the non-critical label: one
more person is asked, and if the aggregate is still not critical the item is held for a
reviewer, with no label and out of every version until adjudicated."""

from __future__ import annotations

from sqlalchemy import select

from labelloop.access.projects import create_project
from labelloop.annotate.service import next_tasks
from labelloop.loop import submit_answer
from labelloop.quality.service import resolve_batch
from labelloop.store.db import open_session
from labelloop.store.models import Batch, FinalLabel, IngestBatch, Item, Project, Task
from labelloop.versions.service import freeze_version, version_records

LABELS = ["lost_card", "balance", "other"]


def test_critical_disagreement_goes_to_a_third_person_then_a_reviewer(settings):
    with open_session(settings.db_url) as s:
        p = create_project(s, "safety", LABELS, critical_labels=["lost_card"], min_agreement=-1)
        src = IngestBatch(project_id=p.id, source="t", source_digest="-", split="pool")
        s.add(src)
        s.flush()
        items = [Item(project_id=p.id, text=t, content_hash=f"{i:064d}", split="pool",
                      source="t", source_row=i, ingest_batch_id=src.id)
                 for i, t in enumerate(["my card is gone", "what is my balance"])]
        batch = Batch(project_id=p.id, strategy="test")
        s.add_all([*items, batch])
        s.flush()
        risky = Task(batch_id=batch.id, item_id=items[0].id, reason="safety-critical",
                     required=2, prelabel="lost_card", score=0.0)
        plain = Task(batch_id=batch.id, item_id=items[1].id, reason="low-confidence",
                     required=1, prelabel="balance", score=-1.0)
        s.add_all([risky, plain])
        s.flush()
        ids = (p.id, batch.id, risky.id, plain.id, items[0].id, items[1].id)
    project_id, batch_id, risky_id, plain_id, risky_item, plain_item = ids

    with open_session(settings.db_url) as s:
        project = s.get(Project, project_id)
        for who, task_id in (("ann", risky_id), ("bo", risky_id), ("cy", plain_id)):
            assert [t.task_id for t in next_tasks(s, project, who, 1)] == [task_id]
        submit_answer(s, risky_id, "ann", "lost_card")
        submit_answer(s, risky_id, "bo", "other")
        assert s.get(Task, risky_id).required == 3  # one more person is asked
        assert risky_id in [t.task_id for t in next_tasks(s, project, "cy", 2)]
        submit_answer(s, risky_id, "cy", "other")
        submit_answer(s, plain_id, "cy", "balance")
        batch = s.get(Batch, batch_id)
        assert batch.status != "open"
        assert batch.qa["held_for_review"] == [risky_item]
        assert s.get(FinalLabel, risky_item) is None  # not settled by vote
        assert s.get(FinalLabel, plain_item).label == "balance"
        version = freeze_version(s, project)
        assert {r["item_id"] for r in version_records(s, version)} == {plain_item}

        resolve_batch(s, batch, "rita", {risky_item: "lost_card"}, note="card reported lost")
        final = s.get(FinalLabel, risky_item)
        assert final.label == "lost_card" and final.origin == "reviewed"
        assert batch.qa["held_for_review"] == []
        again = freeze_version(s, project)
        assert {r["item_id"] for r in version_records(s, again)} == {plain_item, risky_item}
        assert s.scalars(select(FinalLabel)).all()
