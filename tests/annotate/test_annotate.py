"""Annotate: overlap hands a task to k different people, never twice to one; QA on close."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Batch, Task


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


def test_disagreeing_with_the_model_on_a_calibration_task_asks_two_more_people(
        settings, project_name, pool_csv):
    """Calibration and audit answers grade the model, so one annotator's "no" is checked by
    two more; the majority makes the final label. Other tasks take a single answer."""
    from labelloop.store.models import FinalLabel

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        p.critical_labels = []  # every task single-annotator unless adjudicated
        ingest_file(s, p, pool_csv, label_field=None)
        next_batch(s, p, settings, size=10, seed=0)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        handed = {who: next_tasks(s, p, who, limit=4) for who in ("ana", "ben", "chen")}
    holder, cal = next((who, t) for who, ts in handed.items() for t in ts
                       if t.reason == "calibration")
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        other_label = next(lb for lb in p.labels if lb != cal.prelabel)
        submit(s, cal.task_id, holder, other_label)
        task = s.get(Task, cal.task_id)
        assert task.required == 3 and task.status == "open"
        plain = next(t for t in handed[holder] if t.reason != "calibration")
        submit(s, plain.task_id, holder, next(lb for lb in p.labels if lb != plain.prelabel))
        assert s.get(Task, plain.task_id).required == 1
        assert s.get(Task, plain.task_id).status == "done"
    others = [who for who in handed if who != holder]
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        for who in others:
            mine = [t.task_id for t in next_tasks(s, p, who, limit=50)]
            assert cal.task_id in mine
            submit(s, cal.task_id, who, cal.prelabel)
        assert s.get(Task, cal.task_id).status == "done"
        for who, ts in handed.items():  # finish the batch: QA aggregates the three votes
            for t in ts:
                if s.get(Task, t.task_id).status == "open":
                    submit(s, t.task_id, who, t.prelabel)
        final = s.scalar(select(FinalLabel).where(FinalLabel.item_id == s.get(
            Task, cal.task_id).item_id))
        assert final.label == cal.prelabel and len(final.annotators) == 3


def test_a_lone_annotator_is_not_asked_to_adjudicate(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field=None)
        next_batch(s, p, settings, size=10, seed=0)
        cal = next(t for t in next_tasks(s, p, "ana", limit=50) if t.reason == "calibration")
        submit(s, cal.task_id, "ana", next(lb for lb in p.labels if lb != cal.prelabel))
        assert s.get(Task, cal.task_id).status == "done"
