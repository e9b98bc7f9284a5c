"""The demo, shrunk: two rounds on a sample of the packaged BANKING77, no ../shared needed;
it ends with the project open for people: members who sign in with the printed passwords,
and one more batch left open with the latest model's pre-labels."""

from __future__ import annotations

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.api.app import create_app
from labelloop.demo import demo_password, run_demo
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch, DatasetVersion, Membership, Task, User


@pytest.mark.sqlite_only  # the demo runs on the embedded default
def test_demo_rounds_log_dataset_digests(settings):
    lines: list[str] = []
    rows = run_demo(settings, rounds=2, batch_size=40, limit_pool=600, limit_eval=300,
                    echo=lines.append)
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[1]["human_labeled_items"] >= 80
    assert rows[1]["eval_accuracy"] > rows[0]["eval_accuracy"] - 0.05
    assert any(line.startswith("round 2:") for line in lines)
    assert any("MLflow runs:" in line for line in lines)
    # the six KPIs close the demo, numbered, with the auto-accept line beside them
    kpis = lines[lines.index(next(x for x in lines if x.startswith("the six KPIs"))) + 1:]
    assert [x.strip()[:2] for x in kpis[:6]] == ["1.", "2.", "3.", "4.", "5.", "6."]
    assert "lineage completeness: 100%" in kpis[3]
    assert (settings.home / "kpis.png").read_bytes()[:4] == b"\x89PNG"
    with open_session(settings.db_url) as s:
        digests = {v.digest for v in s.query(DatasetVersion)}
    mlflow.set_tracking_uri(settings.tracking_uri)
    run = MlflowClient().get_run(rows[1]["mlflow_run_id"])
    logged = {t.value for d in run.inputs.dataset_inputs for t in d.tags
              if t.key == "labelloop.digest"}
    assert len(logged) == 2 and logged <= digests  # training and evaluation versions
    _open_for_people(settings, lines)


def _open_for_people(settings, lines: list[str]) -> None:  # noqa: ANN001
    with open_session(settings.db_url, read_only=True) as s:
        project = get_project(s, "banking77-demo")
        roles = dict(s.execute(select(User.name, Membership.role).join(
            Membership, Membership.user_id == User.id).where(
            Membership.project_id == project.id)).tuples().all())
        answered_by = set(s.scalars(select(Annotation.annotator).distinct()))
        batches = list(s.scalars(select(Batch).where(Batch.project_id == project.id)
                                 .order_by(Batch.id)))
        tasks = list(s.scalars(select(Task).where(Task.batch_id == batches[-1].id)))
    assert roles == {"ana": "annotator", "ben": "annotator", "chen": "annotator",
                     "rita": "reviewer", "mona": "ml-team"}
    assert answered_by == {"ana", "ben", "chen"}  # the rounds' answers are members'
    # two rounds of history, then one batch open and unanswered, pre-labeled
    assert [b.status == "open" for b in batches] == [False, False, True]
    assert len(tasks) >= 40 and all(t.status == "open" for t in tasks)
    assert all(t.prelabel in project.labels and t.prelabel_confidence for t in tasks)
    closing = lines[lines.index(next(x for x in lines if x.startswith(f"batch {batches[-1].id} "
                                                                      "is open"))):]
    assert f"labelloop serve --home {settings.home}" in closing[1]
    assert "http://127.0.0.1:8000/" in closing[1]
    assert "ana / ana-demo-pass" in closing[2] and "rita / rita-demo-pass" in closing[3]
    assert "mona / mona-demo-pass" in closing[4]
    # the server on the demo's home: ana signs in with the printed password, finds open tasks
    client = TestClient(create_app(settings))
    r = client.post("/auth/login", json={"name": "ana", "password": demo_password("ana")})
    assert r.status_code == 200, r.text
    got = client.post("/projects/banking77-demo/tasks/next", params={"limit": 3},
                      headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert got.status_code == 200, got.text
    assert [t["batch_id"] for t in got.json()] == [batches[-1].id] * 3
    assert all(t["prelabel"] in project.labels for t in got.json())
    assert client.post("/auth/login", json={"name": "rita", "password": "wrong"}
                       ).status_code == 401
