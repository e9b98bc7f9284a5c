"""The CLI against a server (``--server`` with ``--token``): the same commands, acting as the
token's user under their role, each answer checked and audited by the server; refusals and
unreachable servers exit 2 with the reason on stderr and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from labelloop.cli import app
from labelloop.core.settings import Settings
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch
from tests.api.conftest import Team, admin_token
from tests.conftest import LABELS, banking_rows, free_port, live_server, write_csv

runner = CliRunner()


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


def _as(url: str, token: str, *args: str) -> object:
    result = runner.invoke(app, ["--server", url, "--token", token, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


def _refused(url: str, token: str, *args: str) -> str:
    result = runner.invoke(app, ["--server", url, "--token", token, *args])
    assert result.exit_code == 2, result.output
    return result.stderr


def _count(settings: Settings, model: type) -> int:
    with open_session(settings.db_url, read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_the_loop_through_a_server_as_each_tokens_user(settings, server, tmp_path):
    admin = admin_token(settings)
    made = _as(server, admin, "create-project", "bank", "--labels", ",".join(LABELS))
    assert made == {"id": 1, "name": "bank", "labels": len(LABELS)}
    team = Team(settings)
    mia = team.headers("mia", "ml-team", "bank")["Authorization"].removeprefix("Bearer ")
    ana = team.headers("ana", "annotator", "bank")["Authorization"].removeprefix("Bearer ")

    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 3), fields=("text",))
    assert _as(server, mia, "ingest", "bank", str(pool))["n_accepted"] == 3 * len(LABELS)
    batch = _as(server, mia, "next-batch", "bank", "--size", "4", "--seed", "0")
    assert batch["n_tasks"] == 4

    # an annotator may not make batches: 403 from the server, exit 2 here, nothing made
    assert "may not" in _refused(server, ana, "next-batch", "bank", "--size", "4")
    assert _count(settings, Batch) == 1
    # nor act as someone else
    assert "cannot act as 'mia'" in _refused(server, ana, "tasks", "bank", "mia")

    tasks = _as(server, ana, "tasks", "bank", "--limit", "10")
    assert len(tasks) == 4 and all(t["suggestion"]["value"] == {"label": t["prelabel"]}
                                   for t in tasks)
    for t in tasks:
        done = _as(server, ana, "submit", str(t["task_id"]), "ana", t["prelabel"],
                   "--project", "bank")
        assert done["accepted_prelabel"] is True
    with open_session(settings.db_url, read_only=True) as s:
        assert set(s.scalars(select(Annotation.annotator))) == {"ana"}
    # the last answer queued the batch's QA as a job: the server's worker runs it shortly
    deadline = time.monotonic() + 60
    while (qa := _as(server, mia, "qa", "bank", str(batch["batch_id"])))["status"] == "open" \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert qa["batch_id"] == batch["batch_id"] and qa["status"] != "open"

    version = _as(server, mia, "freeze", "bank", "--split", "train", "--name", "v1")
    out = tmp_path / "v1.jsonl"
    assert _as(server, mia, "export", "bank", "v1", str(out)) is None
    assert len(out.read_text().splitlines()) == version["n_rows"]
    assert "exists" in _refused(server, mia, "export", "bank", "v1", str(out))
    assert not list(tmp_path.glob(".v1.jsonl.*"))  # no partial file left behind

    # the server audited each act under the token's user
    log = {(e["actor"], e["action"]) for e in team_log(settings)}
    assert {("admin", "project"), ("mia", "ingest"), ("mia", "next-batch"),
            ("ana", "answer"), ("mia", "freeze"), ("mia", "export")} <= log


def team_log(settings: Settings) -> list[dict]:
    from labelloop.access.audit import read_log

    with open_session(settings.db_url, read_only=True) as s:
        return [{"actor": e.actor, "action": e.action.value} for e in read_log(s, limit=500)]


def test_bad_tokens_unreachable_servers_and_local_commands_exit_2(settings, server):
    real = admin_token(settings)
    wrong = real[:-1] + ("A" if real[-1] != "A" else "B")
    assert "unknown or revoked token" in _refused(server, wrong, "qa", "bank", "1")
    assert "malformed token" in _refused(server, "not-a-token", "prelabel", "bank")
    result = runner.invoke(app, ["--server", server, "prelabel", "bank"])
    assert result.exit_code == 2 and "needs a token" in result.stderr
    assert "cannot reach" in _refused(f"http://127.0.0.1:{free_port()}", "ll_1_x",
                                      "prelabel", "bank")
    assert "local database only" in _refused(server, "ll_1_x", "demo")
    assert "local database only" in _refused(server, "ll_1_x", "access", "audit")
