"""The QA layer in the loop, against a real SQLite store and the real MiniLM: drift after a
guideline change, the error-rate gate, label errors sent back for re-review."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from labelloop.access.projects import get_project, update_guideline
from labelloop.annotate.service import next_tasks
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.quality.reports import drift_findings, project_report
from labelloop.quality.review import REREVIEW, send_for_rereview, suspect_label_errors
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Batch, FinalLabel, Item, Task
from labelloop.versions.service import freeze_version
from tests.annotate.test_gold import loop_with_gold, wrong
from tests.conftest import LABELS, banking_rows, write_csv


def answer_batch(settings, project_name, answers: dict) -> None:  # noqa: ANN001
    """Each annotator in ``answers`` fetches everything open and answers ``answer(text)``."""
    for who, answer in answers.items():
        with open_session(settings.db_url) as s:
            for t in next_tasks(s, get_project(s, project_name), who, limit=200):
                submit(s, t.task_id, who, answer(t.text), seconds_spent=2.0)


def test_drift_after_a_guideline_change_names_the_annotator_and_the_change(
        settings, project_name, tmp_path):
    truth = loop_with_gold(settings, project_name, tmp_path, pool_per_label=10,
                           gold_per_label=5, overlap=2, critical_overlap=2,
                           gold_min_accuracy=0.0)  # keep ben working: this is about drift
    oracle = lambda text: truth[content_hash(text)]  # noqa: E731
    with open_session(settings.db_url) as s:
        first = next_batch(s, get_project(s, project_name), settings, size=30, seed=0).batch_id
    answer_batch(settings, project_name, {"ana": oracle, "ben": oracle})
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        update_guideline(s, p, "v2: card_arrival now covers delivery questions")
        second = next_batch(s, p, settings, size=30, seed=1).batch_id
    rnd = random.Random(0)
    answer_batch(settings, project_name,  # after v2, ben answers carelessly
                 {"ana": oracle, "ben": lambda text: wrong(oracle(text))
                  if rnd.random() < 0.9 else oracle(text)})

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        drift = drift_findings(s, p, margin=0.1, min_count=10)
        report = project_report(s, p)
    assert drift["baseline_batches"] == [first] and drift["current_batches"] == [second]
    findings = {f["metric"]: f for f in drift["findings"]}
    assert set(findings) == {"agreement", "gold_accuracy"}
    gold = findings["gold_accuracy"]
    assert gold["baseline"] == 1.0 and gold["drop"] > 0.3
    assert any(c.startswith("annotator ben:") for c in gold["causes"])
    assert not any(c.startswith("annotator ana") for c in gold["causes"])
    assert any(c.startswith("guideline_version changed: 1 -> 2") for c in gold["causes"])
    assert "likely causes: " in gold["message"]
    # the same figures, tracked per batch and per guideline version
    assert drift["by_batch"][first]["gold_accuracy"] == 1.0
    assert report["by_guideline_version"][1]["gold_accuracy"] == 1.0
    assert report["by_guideline_version"][2]["gold_accuracy"] < 0.7
    batches = {b["batch_id"]: b for b in report["batches"]}
    assert batches[first]["status"] == "passed" and batches[second]["status"] == "flagged"
    assert batches[second]["gold_accuracy"] < 0.7
    with open_session(settings.db_url) as s, pytest.raises(ValidationError):
        drift_findings(s, get_project(s, project_name), margin=1.5)


def test_error_rate_gate_holds_a_batch_back_until_re_reviewed(settings, project_name,
                                                              tmp_path):
    labeled = banking_rows("train", LABELS, 15)
    seen = {content_hash(r["text"]) for r in labeled}
    fresh = [r for r in banking_rows("train", LABELS, 20) if content_hash(r["text"]) not in seen]
    truth = {content_hash(r["text"]): r["category"] for r in labeled + fresh}
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        p.critical_overlap, p.max_error_rate = 1, 0.2
        ingest_file(s, p, write_csv(tmp_path / "labeled.csv", labeled), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "fresh.csv", fresh, fields=("text",)))
        bad = next_batch(s, p, settings, size=20, seed=0).batch_id
    flip = iter([True, False] * 20)  # every other answer is wrong
    answer_batch(settings, project_name, {"ana": lambda text: wrong(truth[content_hash(text)])
                                          if next(flip) else truth[content_hash(text)]})
    with open_session(settings.db_url) as s:
        batch = s.get(Batch, bad)
        assert batch.status == "flagged"
        assert batch.gate_reason.startswith("label_error_rate ")
        assert batch.qa["label_error_rate"] > 0.2
        assert batch.qa["gate"]["bars"]["max_error_rate"] == 0.2
        suspects = batch.qa["label_errors"]["suspect_item_ids"]
        wrong_ids = [f.item_id for f in s.scalars(select(FinalLabel).where(
            FinalLabel.batch_id == bad)) if f.label != truth[s.get(Item, f.item_id).content_hash]]
        assert len(set(suspects) & set(wrong_ids)) >= 0.6 * len(wrong_ids)
        v1 = freeze_version(s, get_project(s, project_name))
        assert bad not in v1.batch_ids and v1.n_rows == len(labeled)

        review = send_for_rereview(s, get_project(s, project_name), batch_id=bad)
        assert review.strategy == REREVIEW and {t.reason for t in review.tasks} == {REREVIEW}
        with pytest.raises(ConflictError, match="open task"):
            send_for_rereview(s, get_project(s, project_name), [review.tasks[0].item_id])
    answer_batch(settings, project_name, {"ana": lambda text: truth[content_hash(text)]})
    with open_session(settings.db_url) as s:
        assert s.get(Batch, review.id).status == "passed"
        v2 = freeze_version(s, get_project(s, project_name))
        assert review.id in v2.batch_ids and v2.n_rows == len(labeled) + 20


def test_label_errors_are_ranked_and_sent_back(settings, project_name, tmp_path):
    rows = banking_rows("train", LABELS, 20)
    flipped = {content_hash(r["text"]) for r in rows[::16]}
    noisy = [{**r, "category": wrong(r["category"])} if content_hash(r["text"]) in flipped
             else r for r in rows]
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "noisy.csv", noisy), label_field="category")
        with pytest.raises(ValidationError, match="top"):
            suspect_label_errors(s, p, settings, top=0)
        found = suspect_label_errors(s, p, settings, top=20, rereview=True)
    assert found["n_items"] == 160 and 0 < found["error_rate"] < 0.3
    hits = [x for x in found["suspects"] if content_hash(x["text"]) in flipped]
    assert len(hits) >= 0.6 * len(flipped)
    truth = {content_hash(r["text"]): r["category"] for r in rows}
    assert all(x["suggested"] == truth[content_hash(x["text"])] for x in hits[:5])
    assert found["suspects"][0]["label_probability"] <= found["suspects"][-1]["label_probability"]
    with open_session(settings.db_url) as s:
        tasks = list(s.scalars(select(Task).where(Task.batch_id == found["rereview_batch_id"])))
        assert len(tasks) == len(found["suspects"])
        assert all(t.reason == REREVIEW and t.prelabel for t in tasks)
        p = get_project(s, project_name)
        with pytest.raises(NotFoundError):
            send_for_rereview(s, p, [10**6])
        with pytest.raises(ValidationError):
            send_for_rereview(s, p, [1], batch_id=found["rereview_batch_id"])
    answer_batch(settings, project_name, {"ana": lambda text: truth[content_hash(text)]})
    with open_session(settings.db_url) as s:
        fixed = {s.get(Item, f.item_id).content_hash: f.label for f in s.scalars(
            select(FinalLabel).where(FinalLabel.batch_id == found["rereview_batch_id"]))}
    assert fixed and all(fixed[h] == truth[h] for h in fixed)


def test_quality_cli(settings, project_name, tmp_path):
    from typer.testing import CliRunner

    from labelloop.cli import app

    rows = banking_rows("train", LABELS, 4)
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), write_csv(tmp_path / "p.csv", rows),
                    label_field="category")
    home = ["--home", str(settings.home)]
    runner = CliRunner()
    for command in (["report"], ["annotators"], ["drift", "--margin", "0.1"],
                    ["label-errors", "--top", "3"]):
        r = runner.invoke(app, ["quality", *command, project_name, *home])
        assert r.exit_code == 0, r.output
    assert '"n_items": 32' in r.output  # label-errors scanned the 32 labeled items
    r = runner.invoke(app, ["quality", "drift", project_name, "--margin", "3", *home])
    assert r.exit_code == 2 and "margin must lie in (0, 1)" in r.output
    r = runner.invoke(app, ["quality", "report", "nope", *home])
    assert r.exit_code == 2 and "no project 'nope'" in r.output
    r = runner.invoke(app, ["quality", "gold", project_name, str(tmp_path / "p.csv"),
                            "--label-field", "category", *home])
    assert r.exit_code == 0 and '"n_duplicates": 32' in r.output  # already in the pool
