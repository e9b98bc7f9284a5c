"""The CLI acts locally as the admin made at first run: users, tokens, members, the audit
log; bad input exits 2 with the reason on stderr and changes nothing."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from labelloop.api.app import create_app
from labelloop.cli import app
from labelloop.core.settings import Settings

runner = CliRunner()


def _json(result) -> object:  # noqa: ANN001
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_users_tokens_members_and_audit(tmp_path):
    home = str(tmp_path / "h")
    _json(runner.invoke(app, ["create-project", "bank", "--labels", "a,b", "--home", home]))
    made = _json(runner.invoke(app, ["access", "add-user", "ana", "--role", "annotator",
                                     "--home", home]))
    assert made["role"] == "annotator"
    token = _json(runner.invoke(app, ["access", "create-token", "ana", "--home", home]))
    _json(runner.invoke(app, ["access", "set-member", "bank", "ana", "--role", "annotator",
                              "--home", home]))
    client = TestClient(create_app(Settings(home=home)))
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/projects/bank", headers=auth).status_code == 200
    assert client.get("/projects/bank/quality", headers=auth).status_code == 403
    _json(runner.invoke(app, ["access", "revoke-token", str(token["token_id"]),
                              "--home", home]))
    assert client.get("/projects/bank", headers=auth).status_code == 401
    log = _json(runner.invoke(app, ["access", "audit", "--home", home]))
    assert [e["action"] for e in log][:4] == ["token", "member", "token", "user"]
    assert {e["actor"] for e in log} == {"admin"}

    r = runner.invoke(app, ["access", "add-user", "bad/name", "--home", home])
    assert r.exit_code == 2 and "may not contain" in r.stderr
    r = runner.invoke(app, ["access", "add-user", "ana", "--home", home])
    assert r.exit_code == 2 and "already exists" in r.stderr
    r = runner.invoke(app, ["access", "set-member", "bank", "nobody", "--role", "reviewer",
                            "--home", home])
    assert r.exit_code == 2 and "no user" in r.stderr
    assert len(_json(runner.invoke(app, ["access", "audit", "--home", home]))) == len(log)


def test_project_settings_out_of_range_are_refused(tmp_path):
    home = str(tmp_path / "h")
    for flag, value in (("--audit-share", "-0.1"), ("--confidence-threshold", "1.5"),
                        ("--calibration-share", "0.9")):
        r = runner.invoke(app, ["create-project", "p", "--labels", "a,b", flag, value,
                                "--home", home])
        assert r.exit_code == 2 and flag.removeprefix("--").replace("-", "_") in r.stderr
    r = runner.invoke(app, ["create-project", "../x", "--labels", "a,b", "--home", home])
    assert r.exit_code == 2 and "may not contain" in r.stderr


def test_export_refuses_to_overwrite_and_reads_the_format_from_the_extension(tmp_path,
                                                                            eval_csv):
    home = str(tmp_path / "h")
    labels = ("card_arrival,exchange_rate,lost_or_stolen_card,pin_blocked,top_up_limits,"
              "cancel_transfer,age_limit,change_pin")
    _json(runner.invoke(app, ["create-project", "bank", "--labels", labels, "--home", home]))
    _json(runner.invoke(app, ["ingest", "bank", str(eval_csv), "--split", "eval",
                              "--label-field", "category", "--home", home]))
    _json(runner.invoke(app, ["freeze", "bank", "--split", "eval", "--home", home]))
    out = tmp_path / "ev.parquet"
    r = runner.invoke(app, ["export", "bank", "eval-v1", str(out), "--home", home])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"PAR1"  # parquet, from the extension
    before = out.read_bytes()
    r = runner.invoke(app, ["export", "bank", "eval-v1", str(out), "--format", "jsonl",
                            "--home", home])
    assert r.exit_code == 2 and "--force" in r.stderr and out.read_bytes() == before
    r = runner.invoke(app, ["export", "bank", "eval-v1", str(tmp_path / "x.txt"),
                            "--home", home])
    assert r.exit_code == 2 and "--format" in r.stderr
    r = runner.invoke(app, ["export", "bank", "eval-v1", str(out), "--format", "jsonl",
                            "--force", "--home", home])
    assert r.exit_code == 0 and out.read_text().startswith("{")
