"""The workbench's API: undoing a skip, the unsure flag, one's own task, batch progress;
the reviewer queue and one-item adjudication, with bad input refused and nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer
from labelloop.prelabel.service import prelabel_project
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, AuditEvent, LabelEvent
from tests.conftest import CRITICAL


@pytest.fixture
def batch_id(settings, project_name, pool_csv) -> int:
    with open_session(settings.db_url) as s:
        project = get_project(s, project_name)
        ingest_file(s, project, pool_csv, text_field="text", label_field=None)
        prelabel_project(s, project, settings)
        return next_batch(s, project, settings, size=4, auto_accept=False, seed=5).batch_id


def _count(settings, model) -> int:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_undo_a_skip_unsure_my_task_and_progress(client, team, settings, batch_id):
    ana, ben = team.headers("ana", "annotator", "bank"), team.headers("ben", "annotator", "bank")
    tasks = client.post("/projects/bank/tasks/next", params={"limit": 10}, headers=ana).json()
    first = tasks[0]
    assert first["guideline_excerpt"] == []  # the project's guideline names no label
    url = f"/projects/bank/tasks/{first['task_id']}/annotations"
    before = _count(settings, Annotation)
    r = client.post(url, json={"status": "skipped", "skip_reason": " "}, headers=ana)
    assert r.status_code == 422 and r.json()["detail"]["where"] == "skip_reason"
    assert _count(settings, Annotation) == before  # nothing stored
    r = client.post(url, json={"status": "skipped", "skip_reason": "unclear"}, headers=ana)
    assert r.status_code == 201 and r.json()["status"] == "skipped"
    mine = client.get(f"/projects/bank/tasks/{first['task_id']}", headers=ana).json()
    assert mine["answer"] == {"label": None, "status": "skipped", "skip_reason": "unclear",
                              "unsure": False, "batch_open": True}
    # undo: the skip becomes an answer, flagged unsure
    r = client.post(url, json={"label": first["prelabel"], "unsure": True}, headers=ana)
    assert r.status_code in (200, 201), r.text
    assert (r.json()["status"], r.json()["label"], r.json()["unsure"]) == (
        "submitted", first["prelabel"], True)
    assert client.get(f"/projects/bank/tasks/{first['task_id']}",
                      headers=ben).status_code == 404  # another person's task
    r = client.get("/projects/bank/tasks/progress", params={"batch_id": batch_id}, headers=ana)
    p = r.json()
    assert (p["n_tasks"], p["mine_answered"], p["mine_skipped"]) == (4, 1, 0)
    assert p["mine_held"] == len(tasks) - 1
    assert client.get("/projects/bank/tasks/progress", params={"batch_id": 0},
                      headers=ana).status_code == 422
    assert client.get("/projects/bank/tasks/progress", params={"batch_id": 999},
                      headers=ana).status_code == 404


def test_the_review_queue_and_one_item_adjudication(client, team, settings, batch_id):
    rita = team.headers("rita", "reviewer", "bank")
    ana = team.headers("ana", "annotator", "bank")
    team.headers("ben", "annotator", "bank")
    with open_session(settings.db_url) as s:  # both answer every task; ben disputes one
        from labelloop.annotate.service import next_tasks

        project = get_project(s, "bank")
        held = {n: next_tasks(s, project, n, limit=10) for n in ("ana", "ben")}
    disputed = unsure = None
    for name, tasks in held.items():
        for t in tasks:
            label, flag = t.prelabel, False
            if name == "ben" and disputed is None:
                disputed = t.item_id
                label = CRITICAL[0] if t.prelabel != CRITICAL[0] else "card_arrival"
            elif name == "ana" and unsure is None:
                unsure, flag = t.item_id, True
            with open_session(settings.db_url) as s:
                from labelloop.annotate.service import Answer

                submit_answer(s, t.task_id, name, answer=Answer(label=label, unsure=flag))
    assert disputed is not None  # ben holds the safety-critical tasks (seeded)
    queue = client.get("/projects/bank/review/queue", headers=rita).json()
    by_item = {q["item_id"]: q for q in queue["items"]}
    assert disputed in by_item and by_item[disputed]["critical"]
    assert by_item[disputed]["why"] in ("held", "disagreement")
    assert {a["annotator"] for a in by_item[disputed]["answers"]} == {"ana", "ben"}
    assert client.get("/projects/bank/review/queue", headers=ana).status_code == 403

    events, audits = _count(settings, LabelEvent), _count(settings, AuditEvent)
    body = {"batch_id": batch_id, "item_id": disputed, "label": "no-such-label"}
    for bad, status in ((body, 422), ({**body, "label": CRITICAL[0], "item_id": 10**9}, 404),
                        ({**body, "label": CRITICAL[0], "batch_id": 10**9}, 404),
                        ({**body, "label": ""}, 422), ({"batch_id": batch_id}, 422)):
        r = client.post("/projects/bank/review/adjudications", json=bad, headers=rita)
        assert r.status_code == status, (bad, r.text)
        assert r.json()["detail"]["message"]
    assert client.post("/projects/bank/review/adjudications", json={**body, "label": "x"},
                       headers=ana).status_code == 403
    assert (_count(settings, LabelEvent), _count(settings, AuditEvent)) == (events, audits)

    r = client.post("/projects/bank/review/adjudications",
                    json={**body, "label": CRITICAL[0], "note": "card reported stolen"},
                    headers=rita)
    assert r.status_code == 201, r.text
    event = r.json()
    assert (event["reason"], event["by"], event["to_label"]) == ("adjudication", "rita",
                                                                 CRITICAL[0])
    with open_session(settings.db_url, read_only=True) as s:
        audit = s.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert (audit.action, audit.actor, audit.target) == ("adjudicate", "rita",
                                                         f"item {disputed}")
    after = client.get("/projects/bank/review/queue", headers=rita).json()
    assert disputed not in {q["item_id"] for q in after["items"]}
    if unsure is not None and unsure != disputed:
        assert {q["item_id"]: q["why"] for q in after["items"]}.get(unsure) == "unsure"
