"""A task whose holder went away goes back to the pool after the timeout, and their draft
goes with it; until then nobody else gets it."""

from __future__ import annotations

import time

from sqlalchemy import select

from labelloop.access.projects import create_project
from labelloop.annotate.service import Answer, my_tasks, next_tasks
from labelloop.core.enums import AnswerStatus
from labelloop.loop import submit_answer
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch, IngestBatch, Item, Project, Task


def test_stale_assignments_are_released_with_their_drafts(settings):
    with open_session(settings.db_url) as s:
        p = create_project(s, "slow", ["a", "b"])
        src = IngestBatch(project_id=p.id, source="t", source_digest="-", split="pool")
        s.add(src)
        s.flush()
        item = Item(project_id=p.id, text="x", content_hash="0" * 64, split="pool",
                    source="t", source_row=1, ingest_batch_id=src.id)
        batch = Batch(project_id=p.id, strategy="test")
        s.add_all([item, batch])
        s.flush()
        task = Task(batch_id=batch.id, item_id=item.id, reason="low-confidence", required=1,
                    prelabel="a", score=0.0)
        s.add(task)
        s.flush()
        ids = p.id, task.id
    project_id, task_id = ids
    with open_session(settings.db_url) as s:
        p = s.get(Project, project_id)
        assert [t.task_id for t in next_tasks(s, p, "ana", 5)] == [task_id]
        submit_answer(s, task_id, "ana", answer=Answer(label="b", status=AnswerStatus.DRAFT))
        assert next_tasks(s, p, "bo", 5) == []  # held, and within the timeout
    time.sleep(0.05)
    with open_session(settings.db_url) as s:
        p = s.get(Project, project_id)
        assert [t.task_id for t in next_tasks(s, p, "bo", 5, timeout_s=0.01)] == [task_id]
        assert my_tasks(s, p, "ana") == []
        assert s.scalars(select(Annotation)).all() == []  # ana's draft went with her place
        submit_answer(s, task_id, "bo", "a")
        assert s.get(Task, task_id).status == "done"
