"""Annotate: overlap hands a task to k different people, never twice to one; QA on close."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from annotate.service import next_tasks, submit
from ingest.service import ingest_file
from labelloop.projects import get_project
from selection.service import next_batch
from store.db import open_session
from store.models import Batch, Task


def test_overlap_and_batch_close(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        p.overlap = 2  # every task needs two people
        ingest_file(s, p, pool_csv, label_field=None)  # an unlabeled pool
        rep = next_batch(s, p, settings, size=6, seed=0)
    seen: dict[str, list[int]] = {}
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        for who in ("ana", "ben", "chen"):
            seen[who] = [t.task_id for t in next_tasks(s, p, who, limit=50)]
    assert all(len(set(ids)) == len(ids) for ids in seen.values())
    per_task = Counter(i for ids in seen.values() for i in ids)
    with open_session(settings.db_url) as s:
        required = {t.id: t.required for t in s.scalars(select(Task))}
    assert per_task == Counter(required)  # each task handed out exactly `required` times
    # The same annotator asking again gets their open assignments back, not new ones.
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        assert [t.task_id for t in next_tasks(s, p, "ana", limit=50)] == seen["ana"]
    with open_session(settings.db_url) as s:
        for who, ids in seen.items():
            for task_id in ids:
                task = s.get(Task, task_id)
                submit(s, task_id, who, task.prelabel, seconds_spent=2.0)
        batch = s.get(Batch, rep.batch_id)
        assert batch.status == "passed"
        assert batch.qa["n_annotations"] == sum(required.values())
        assert batch.qa["accepted_prelabel_share"] == 1.0
        assert batch.qa["krippendorff_alpha"] == 1.0
