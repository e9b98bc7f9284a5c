"""A 2xx means committed: the server is killed with SIGKILL the moment it has answered a
submission with a 2xx, again and again; after each restart every acknowledged answer is
stored exactly once, and a retry with the same Idempotency-Key returns it unchanged."""

from __future__ import annotations

import os
import signal
import socket
import uuid

import httpx
from sqlalchemy import func, select

from labelloop.access.projects import create_project
from labelloop.access.users import add_member, create_token, create_user
from labelloop.core.enums import Role
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import Annotation, Batch, IngestBatch, Item, Task
from tests.conftest import server_process

LABELS = ["a", "b", "c"]
KILLS = 6


def _world(url: str, n_tasks: int) -> list[str]:
    with open_session(url) as s:
        project = create_project(s, "crash", LABELS)
        source = IngestBatch(project_id=project.id, source="t", source_digest="-", split="pool")
        s.add(source)
        s.flush()
        items = [Item(project_id=project.id, text=f"text {i}", content_hash=f"{i:064d}",
                      split="pool", source="t", source_row=i, ingest_batch_id=source.id)
                 for i in range(n_tasks)]
        batch = Batch(project_id=project.id, strategy="test")
        s.add_all([*items, batch])
        s.flush()
        s.add_all(Task(batch_id=batch.id, item_id=it.id, reason="low-confidence", required=2,
                       prelabel="a", score=-float(i)) for i, it in enumerate(items))
        tokens = []
        for name in ("kim", "lee"):
            user = create_user(s, name, Role.ANNOTATOR)
            add_member(s, project, user, Role.ANNOTATOR)
            tokens.append(create_token(s, user, "t")[1])
    return tokens


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_acknowledged_answers_survive_sigkill(settings):
    tokens = _world(settings.db_url, 40)
    dispose_engines(settings.db_url)
    acked: dict[int, tuple[str, int, str, str]] = {}  # answer id -> (token, task, key, label)
    for round_ in range(KILLS):
        port = _port()
        server = server_process(settings, port)
        base = f"http://127.0.0.1:{port}/projects/crash"
        killed = False
        try:
            with httpx.Client(timeout=10) as client:
                for k, token in enumerate(tokens):
                    auth = {"Authorization": f"Bearer {token}"}
                    tasks = client.post(f"{base}/tasks/next", params={"limit": 3}, headers=auth)
                    assert tasks.status_code == 200, tasks.text
                    for t in tasks.json():
                        key, label = uuid.uuid4().hex, LABELS[(round_ + k) % 3]
                        r = client.post(f"{base}/tasks/{t['task_id']}/annotations",
                                        json={"label": label},
                                        headers=auth | {"Idempotency-Key": key})
                        assert r.status_code == 201, r.text
                        acked[r.json()["id"]] = (token, t["task_id"], key, label)
                        if k == len(tokens) - 1:  # the last answer of the round: kill at once
                            os.kill(server.pid, signal.SIGKILL)
                            killed = True
                            break
                    if killed:
                        break
        finally:
            server.kill()
            server.wait()
        assert killed
        with open_session(settings.db_url, read_only=True) as s:
            stored = {a.id: a for a in s.scalars(select(Annotation))}
            per_key = dict(s.execute(select(Annotation.idempotency_key, func.count())
                                     .group_by(Annotation.idempotency_key)).all())
        dispose_engines(settings.db_url)
        assert set(acked) == set(stored), f"round {round_}: acknowledged != stored"
        for answer_id, (_tok, task_id, key, label) in acked.items():
            assert stored[answer_id].task_id == task_id and stored[answer_id].label == label
            assert per_key[key] == 1
    # After one more restart, every retry returns its first result and stores nothing new.
    port = _port()
    server = server_process(settings, port)
    try:
        with httpx.Client(timeout=10) as client:
            for answer_id, (token, task_id, key, label) in acked.items():
                r = client.post(f"http://127.0.0.1:{port}/projects/crash/tasks/{task_id}/"
                                "annotations", json={"label": label},
                                headers={"Authorization": f"Bearer {token}",
                                         "Idempotency-Key": key})
                assert r.status_code == 200 and r.json()["id"] == answer_id, r.text
    finally:
        server.kill()
        server.wait()
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Annotation.id))) == len(acked)
    dispose_engines(settings.db_url)
    assert len(acked) >= KILLS * 4
