"""The six KPIs, read from a real store after a real loop (batches answered by people, a
re-review, frozen versions, a trained model's row, remediation targets), each checked
against the same figure counted by hand from the tables; as JSON over the API and the CLI,
and drawn as a PNG."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.api.app import create_app
from labelloop.cli import app as cli_app
from labelloop.core.enums import FindingKind, LabelOrigin, TargetAction, TargetStatus
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer
from labelloop.quality.review import send_for_rereview
from labelloop.remediate.kpi_report import kpi_figure, kpi_lines
from labelloop.remediate.kpis import project_kpis
from labelloop.selection.auto_accept import audit_interval
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import (
    Annotation,
    Batch,
    FinalLabel,
    Item,
    LabelEvent,
    ModelVersion,
    Prediction,
    RemediationTarget,
    Task,
)
from labelloop.versions.service import freeze_version
from tests.annotate.test_gold import loop_with_gold, wrong
from tests.api.conftest import Team, admin_token
from tests.conftest import CRITICAL, LABELS, banking_rows, live_server, write_csv

PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _fresh_nones(k: dict) -> None:
    assert k["agreement"]["per_batch"] == []
    assert k["agreement"]["krippendorff_alpha"] == {"weighted": None, "latest": None,
                                                    "n_batches": 0}
    assert k["agreement"]["agreement_with_consensus"] is None
    assert (k["gold"]["accuracy"], k["gold"]["ci95"], k["gold"]["per_annotator"]) == \
        (None, None, {})
    assert k["coverage"]["n_labeled"] == 0 and k["coverage"]["under_covered"] == []
    assert k["coverage"]["target"]["source"] == "uniform"
    assert all(c["coverage"] is None for c in k["coverage"]["per_class"])
    assert k["coverage"]["edge_cases"] is None
    assert k["lineage"] == {"train_version": None, "active_model": None}
    assert all(s == {"n": 0, "median_seconds": None}
               for s in k["cycle_time"]["stages"].values())
    assert k["cycle_time"]["rework"]["rate"] is None
    assert k["cycle_time"]["prelabel_corrected"]["share"] is None
    assert k["remediation"]["etr_seconds"] == {"n": 0, "median": None, "mean": None}
    assert not any(k["remediation"]["by_status"].values())
    assert k["auto_accept"]["share"] is None and k["auto_accept"]["audit"]["accuracy"] is None


def test_a_fresh_project_has_no_figures_yet_and_still_draws(settings, project_name):
    with open_session(settings.db_url, read_only=True) as s:
        k = project_kpis(s, get_project(s, project_name), replay=True)
    _fresh_nones(k)
    assert k["labels_saved"] is None  # nothing to replay
    assert kpi_lines(k)[-1].endswith("too few human labels to replay")
    json.dumps(k)  # plain JSON, no NaN, no datetimes
    assert kpi_figure(k).startswith(PNG)


def _answer_all(settings, project_name: str, answer) -> None:  # noqa: ANN001
    for who in ("ana", "ben"):
        with open_session(settings.db_url) as s:
            for t in next_tasks(s, get_project(s, project_name), who, limit=100):
                submit_answer(s, t.task_id, who, answer(who, t), seconds_spent=2.0)


def test_the_six_kpis_after_a_loop_match_the_tables(settings, project_name, tmp_path):
    truth = loop_with_gold(settings, project_name, tmp_path, pool_per_label=5,
                           gold_per_label=2, overlap=2, critical_overlap=2,
                           gold_min_accuracy=0.0)
    # an evaluation set far from uniform: (i % 3) + 1 rows of the i-th label
    spare = [r for r in banking_rows("train", LABELS, 12)
             if content_hash(r["text"]) not in truth]
    evaluation = [r for i, lb in enumerate(LABELS)
                  for r in [r for r in spare if r["category"] == lb][:i % 3 + 1]]
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "eval.csv", evaluation), split="eval",
                    label_field="category")
        freeze_version(s, p, split="eval")
        gold_items = set(s.scalars(select(Item.id).where(Item.split == "gold")))

    def answer(who: str, view) -> str:  # noqa: ANN001
        right = truth[content_hash(view.text)]
        # ben misses every gold item, and the first task of each batch
        if who == "ben" and (view.item_id in gold_items or view.task_id in first_tasks):
            return wrong(right)
        return right

    batch_ids = []
    for size, seed in ((10, 0), (6, 1)):
        with open_session(settings.db_url) as s:
            batch_ids.append(next_batch(s, get_project(s, project_name), settings,
                                        size=size, seed=seed).batch_id)
            first_tasks = {s.scalar(select(Task.id).where(Task.batch_id == batch_ids[-1])
                                    .order_by(Task.id).limit(1))}
        _answer_all(settings, project_name, answer)

    # a re-review changes one human label: that is rework
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        relabel = s.scalar(select(FinalLabel.item_id).join(Item, Item.id == FinalLabel.item_id)
                           .where(Item.split == "pool", FinalLabel.origin == "human")
                           .order_by(FinalLabel.item_id).limit(1))
        send_for_rereview(s, p, [relabel], required=1)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        (task,) = [t for t in next_tasks(s, p, "chen", limit=10) if t.item_id == relabel]
        submit_answer(s, task.task_id, "chen", next(lb for lb in LABELS if lb != task.prelabel))

    # a training version, the row of a model trained on it, remediation targets
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        train = freeze_version(s, p)
        zero_shot = p.active_model_id
        trained = ModelVersion(project_id=p.id, name="classifier/train-v1", kind="classifier",
                               encoder="e", train_version_id=train.id, mlflow_run_id="run-1")
        s.add(trained)
        s.flush()
        target = {"project_id": p.id, "model_id": zero_shot, "kind": FindingKind.F1_DROP,
                  "figure": 0.2, "message": "f1 fell", "action": TargetAction.BOOST,
                  "owner": "mia", "labels": [LABELS[0]]}
        s.add_all([RemediationTarget(**target, status=TargetStatus.CLOSED, created_at=t0,
                                     closed_at=t0 + timedelta(seconds=3600)),
                   RemediationTarget(**target, created_at=t0 + timedelta(days=1))])
        # the audits pooled over batches: one batch's audit, set to known numbers
        first = s.get(Batch, batch_ids[0])
        first.qa = {**first.qa, "audit": {"n": 20, "correct": 19, "accuracy": 0.95}}
        trained_id = trained.id

    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        k = project_kpis(s, p)
        json.dumps(k)

        # 1. agreement: each closed batch's alpha, weighted by its tasks
        closed = [b for b in s.scalars(select(Batch).order_by(Batch.id))
                  if b.closed_at is not None]
        assert [r["batch_id"] for r in k["agreement"]["per_batch"]] == [b.id for b in closed]
        measured = [b for b in closed if b.qa.get("krippendorff_alpha") is not None]
        assert [b.id for b in measured] == batch_ids  # the re-review had one answer a task
        alphas = [(b.qa["krippendorff_alpha"], b.qa["n_tasks"]) for b in measured]
        assert alphas[0][0] < 1.0
        alpha = k["agreement"]["krippendorff_alpha"]
        assert alpha["weighted"] == pytest.approx(sum(a * n for a, n in alphas)
                                                  / sum(n for _, n in alphas))
        assert alpha["latest"] == alphas[-1][0] and alpha["n_batches"] == 2
        assert 0.0 < k["agreement"]["agreement_with_consensus"] < 1.0

        # 2. gold accuracy: ana always right, ben never, over the answers on gold items
        gold_answers = s.execute(select(Annotation.annotator, Annotation.label,
                                        Item.given_label)
                                 .join(Item, Item.id == Annotation.item_id)
                                 .where(Item.split == "gold")).all()
        assert gold_answers
        right = sum(label == given for _, label, given in gold_answers)
        assert k["gold"]["n"] == len(gold_answers)
        assert k["gold"]["accuracy"] == pytest.approx(right / len(gold_answers))
        lo, hi = k["gold"]["ci95"]
        assert lo < k["gold"]["accuracy"] < hi
        per = Counter(who for who, _, _ in gold_answers)
        assert k["gold"]["per_annotator"] == {
            "ana": {"n": per["ana"], "accuracy": 1.0},
            "ben": {"n": per["ben"], "accuracy": 0.0}}

        # 3. coverage against the evaluation set's distribution
        labeled = Counter(s.scalars(select(FinalLabel.label).join(
            Item, Item.id == FinalLabel.item_id).where(Item.split == "pool")))
        target_counts = Counter(r["category"] for r in evaluation)
        cov = k["coverage"]
        assert cov["target"]["source"] == "eval-version" and cov["target"]["version"]
        assert cov["n_labeled"] == sum(labeled.values())
        by_class = {c["label"]: c for c in cov["per_class"]}
        expected = {}
        for lb in LABELS:
            share = labeled[lb] / sum(labeled.values())
            want = target_counts[lb] / len(evaluation)
            expected[lb] = share / want
            assert by_class[lb]["n"] == labeled[lb]
            assert by_class[lb]["share"] == pytest.approx(share)
            assert by_class[lb]["target_share"] == pytest.approx(want)
            assert by_class[lb]["coverage"] == pytest.approx(share / want)
        assert cov["under_covered"] == [lb for lb in LABELS if expected[lb] < 0.5]

        # ... and the edge cases the zero-shot model marks, counted from its predictions
        humans = set(s.scalars(select(FinalLabel.item_id).where(
            FinalLabel.origin.in_(["human", "reviewed"]))))
        edge = set()
        for item_id, probs in s.execute(
                select(Prediction.item_id, Prediction.probs)
                .join(Item, Item.id == Prediction.item_id)
                .where(Prediction.model_version_id == zero_shot, Item.split == "pool")):
            top = sorted(probs.values(), reverse=True)
            if max(probs, key=probs.get) in CRITICAL or top[0] - top[1] < 0.1:
                edge.add(item_id)
        assert edge
        ec = cov["edge_cases"]
        assert (ec["model_id"], ec["n"], ec["n_human"]) == (zero_shot, len(edge),
                                                            len(edge & humans))
        assert ec["share"] == pytest.approx(len(edge & humans) / len(edge))

        # 4. lineage: a version labelloop made is whole; the zero-shot model trained on none
        assert k["lineage"]["train_version"]["id"] == train.id
        assert k["lineage"]["train_version"]["share"] == 1.0
        assert k["lineage"]["active_model"] is None

        # 5. cycle time: every stage timed, none negative; one item reworked
        stages = k["cycle_time"]["stages"]
        assert list(stages) == ["ingest_to_prelabel", "selection", "annotation", "qa",
                                "versioning", "training"]
        for name, stage in stages.items():
            assert stage["n"] > 0 and stage["median_seconds"] >= 0, name
        assert stages["training"]["n"] == 1 and stages["qa"]["n"] == 3
        human_items = set(s.scalars(select(LabelEvent.item_id).where(
            LabelEvent.origin.in_([LabelOrigin.HUMAN, LabelOrigin.REVIEWED]))))
        assert k["cycle_time"]["rework"] == {"n_human_labeled": len(human_items),
                                             "n_reworked": 1,
                                             "rate": 1 / len(human_items)}
        accepted = list(s.scalars(select(Annotation.accepted_prelabel).join(
            Task, Task.id == Annotation.task_id).where(Task.prelabel.is_not(None))))
        corrected = k["cycle_time"]["prelabel_corrected"]
        assert corrected["n_answers"] == len(accepted)
        assert corrected["n_corrected"] == accepted.count(False) > 0

        # 6. evaluation-to-remediation time
        assert k["remediation"]["etr_seconds"] == {"n": 1, "median": 3600.0, "mean": 3600.0}
        assert k["remediation"]["by_status"] == {"open": 1, "acting": 0, "addressed": 0,
                                                 "closed": 1, "dismissed": 0}

        # beside them: auto-accept share and the pooled audit
        origins = Counter(s.scalars(select(FinalLabel.origin).join(
            Item, Item.id == FinalLabel.item_id).where(Item.split == "pool")))
        auto = k["auto_accept"]
        assert auto["n_auto"] == auto["labels_no_human_gave"] == origins["auto"]
        assert auto["share"] == pytest.approx(origins["auto"] / sum(origins.values()))
        audits = [b.qa["audit"] for b in closed if b.qa.get("audit", {}).get("n")]
        n, ok = sum(a["n"] for a in audits), sum(a["correct"] for a in audits)
        assert auto["audit"]["n"] == n >= 20 and auto["audit"]["correct"] == ok
        assert auto["audit"]["ci95"] == pytest.approx(list(audit_interval(ok, n)))

        assert kpi_figure(k).startswith(PNG)

    # the trained model made active: its lineage counts its MLflow run too
    with open_session(settings.db_url) as s:
        get_project(s, project_name).active_model_id = trained_id
    with open_session(settings.db_url, read_only=True) as s:
        k = project_kpis(s, get_project(s, project_name))
    assert k["lineage"]["active_model"]["id"] == trained_id
    assert k["lineage"]["active_model"]["share"] == 1.0
    # edge cases stay those of the model that pre-labeled the newest batch: the new model
    # has predicted nothing yet
    with open_session(settings.db_url, read_only=True) as s:
        newest = s.scalar(select(Batch.model_version_id).order_by(Batch.id.desc()).limit(1))
    assert newest != trained_id and k["coverage"]["edge_cases"]["model_id"] == newest


def test_kpis_over_http_for_the_ml_team_not_for_annotators(settings, project_name):
    client = TestClient(create_app(settings))
    team = Team(settings)
    mia = team.headers("mia", "ml-team", project_name)
    ana = team.headers("ana", "annotator", project_name)
    r = client.get(f"/projects/{project_name}/kpis", headers=mia)
    assert r.status_code == 200, r.text
    _fresh_nones(r.json())
    r = client.get(f"/projects/{project_name}/kpis.png", headers=mia)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(PNG)
    for path in ("kpis", "kpis.png"):
        assert client.get(f"/projects/{project_name}/{path}", headers=ana).status_code == 403
    assert client.get("/projects/nope/kpis", headers=mia).status_code == 404


def test_cli_prints_the_kpis_and_draws_them(settings, project_name, tmp_path):
    home = str(settings.home)
    png = tmp_path / "kpis.png"
    r = runner.invoke(cli_app, ["kpis", project_name, "--png", str(png), "--home", home])
    assert r.exit_code == 0, r.output
    _fresh_nones(json.loads(r.stdout))
    assert png.read_bytes().startswith(PNG)
    r = runner.invoke(cli_app, ["kpis", "nope", "--home", home])
    assert r.exit_code == 2 and "nope" in r.output
    r = runner.invoke(cli_app, ["kpis", project_name, "--png", str(tmp_path / "no" / "k.png"),
                                "--home", home])
    assert r.exit_code == 2 and "no such folder" in r.output


def test_cli_kpis_through_a_server(settings, project_name, tmp_path):
    png = tmp_path / "remote.png"
    with live_server(settings) as url:
        r = runner.invoke(cli_app, ["--server", url, "--token", admin_token(settings), "kpis",
                                    project_name, "--png", str(png)])
        assert r.exit_code == 0, r.output
        _fresh_nones(json.loads(r.stdout))
        assert png.read_bytes().startswith(PNG)
        annotator = Team(settings).headers("ana", "annotator", project_name)
        r = runner.invoke(cli_app, ["--server", url, "--token",
                                    annotator["Authorization"].removeprefix("Bearer "),
                                    "kpis", project_name])
        assert r.exit_code == 2
