"""The CLI: --help, a clear one-line error and exit code 2 on bad input, JSON on success."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labelloop.cli import app

runner = CliRunner()


def test_help_lists_the_loop():
    out = runner.invoke(app, ["--help"]).output
    for command in ("ingest", "prelabel", "next-batch", "tasks", "submit", "qa", "freeze",
                    "export", "train", "serve", "demo", "simulate"):
        assert command in out


def test_create_ingest_and_errors(tmp_path, pool_csv):
    home = str(tmp_path / "h")
    r = runner.invoke(app, ["create-project", "bank", "--labels", "card_arrival,exchange_rate,"
                            "lost_or_stolen_card,pin_blocked,top_up_limits,cancel_transfer,"
                            "age_limit,change_pin", "--critical", "lost_or_stolen_card",
                            "--home", home])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ingest", "bank", str(pool_csv), "--label-field", "category",
                            "--home", home])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["n_accepted"] > 200
    r = runner.invoke(app, ["ingest", "bank", str(tmp_path / "missing.csv"), "--home", home])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["create-project", "bank", "--labels", "a,b", "--home", home])
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(app, ["next-batch", "bank", "--strategy", "nope", "--home", home])
    assert r.exit_code == 2 and "nope" in r.output


def test_a_setting_that_does_not_validate_is_exit_2_naming_it(tmp_path, monkeypatch):
    """LABELLOOP_RECIPE=tuned: exit 2 with the setting's name, and nothing is made."""
    home = tmp_path / "h"
    monkeypatch.setenv("LABELLOOP_RECIPE", "tuned")
    r = runner.invoke(app, ["create-project", "bank", "--labels", "a,b", "--home", str(home)])
    assert r.exit_code == 2, r.output
    assert "setting recipe" in r.output and "'auto' or 'fixed'" in r.output
    assert not home.exists()
