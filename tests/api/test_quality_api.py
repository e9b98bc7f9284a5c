"""The quality layer over HTTP: a gate that blocks a bad batch end to end, reports,
scorecards, drift, label errors, gold upload, and bad input refused with the store intact."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from labelloop.ingest.checks import content_hash
from labelloop.store.db import open_session
from labelloop.store.models import Item
from tests.api.conftest import qa_done
from tests.conftest import CRITICAL, LABELS, banking_rows, write_csv


def run_batch(client, team, answer, size: int, seed: int) -> int:  # noqa: ANN001
    """A new batch that "ana" and "ben" answer in full with ``answer(who, text)``; the last
    answer queues its QA, which the server's worker runs."""
    r = client.post("/projects/bank/batches", json={"size": size, "seed": seed})
    assert r.status_code == 201, r.text
    qa_jobs = []
    with client:  # the server's lifespan: its job worker runs the batch's QA
        for who in ("ana", "ben"):
            me = team.headers(who, "annotator", "bank")
            tasks = client.post("/projects/bank/tasks/next", params={"limit": 100}, headers=me)
            for t in tasks.json():
                a = client.post(f"/projects/bank/tasks/{t['task_id']}/annotations",
                                json={"label": answer(who, t["text"])}, headers=me)
                assert a.status_code == 201, a.text
                qa_jobs += [a.json()["qa_job_id"]] if a.json()["qa_job_id"] else []
                qa_done(client.app.state.settings, a.json())
    assert len(qa_jobs) == 1  # only the answer that completed the batch queued its QA
    return r.json()["batch_id"]


def test_quality_gate_blocks_a_bad_batch_end_to_end(client, team, settings, tmp_path):
    rows = banking_rows("train", LABELS, 8)
    truth = {content_hash(r["text"]): r["category"] for r in rows}
    r = client.post("/projects", json={"name": "bank", "labels": LABELS,
                                       "critical_labels": CRITICAL, "overlap": 2,
                                       "min_agreement": 0.5, "min_kappa": 0.4})
    assert r.status_code == 201 and r.json()["min_kappa"] == 0.4, r.text
    with write_csv(tmp_path / "pool.csv", rows, fields=("text",)).open("rb") as fh:
        assert client.post("/projects/bank/ingest",
                           files={"file": ("pool.csv", fh, "text/csv")}).status_code == 200

    good = run_batch(client, team, lambda who, text: truth[content_hash(text)], size=12, seed=0)
    rnd = random.Random(3)  # in the second batch ben answers at random
    bad = run_batch(client, team, lambda who, text: truth[content_hash(text)] if who == "ana"
                    else rnd.choice(LABELS), size=12, seed=1)
    assert bad != good

    qa = client.get(f"/projects/bank/batches/{bad}").json()
    assert qa["status"] == "flagged"
    assert "krippendorff_alpha" in qa["gate_reason"] and "cohen_kappa" in qa["gate_reason"]
    gate = qa["qa"]["gate"]
    assert not gate["passed"] and gate["bars"]["min_kappa"] == 0.4
    assert gate["figures"]["cohen_kappa"] < 0.4
    assert client.get(f"/projects/bank/batches/{good}").json()["status"] == "passed"

    v1 = client.post("/projects/bank/versions", json={"split": "train"}).json()
    assert v1["batch_ids"] == [good] and v1["n_rows"] == 12  # the bad batch is held back
    report = client.get("/projects/bank/quality").json()
    by_id = {b["batch_id"]: b for b in report["batches"]}
    assert by_id[bad]["status"] == "flagged" and by_id[bad]["gate_reason"] == qa["gate_reason"]
    # a safety-critical item the two disagree on waits for a reviewer, with no label yet
    held = qa["qa"]["held_for_review"]
    assert report["final_labels"]["held_back"] == 12 - len(held)
    assert report["gate"] == {"min_alpha": 0.5, "min_kappa": 0.4, "min_gold_accuracy": None,
                              "max_error_rate": None}

    r = client.post(f"/projects/bank/batches/{bad}/resolve",
                    json={"corrections": {str(i): LABELS[0] for i in held}, "note": "checked"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    v2 = client.post("/projects/bank/versions", json={"split": "train"}).json()
    assert v2["batch_ids"] == [good, bad] and v2["n_rows"] == 24
    assert client.get("/projects/bank/quality").json()["final_labels"]["held_back"] == 0

    cards = {c["annotator"]: c for c in client.get("/projects/bank/annotators").json()}
    assert set(cards) == {"ana", "ben"}
    assert cards["ana"]["n_answers"] == cards["ben"]["n_answers"] == 24
    assert cards["ben"]["by_guideline_version"]["1"]["n_answers"] == 24
    assert cards["ben"]["gold"] is None and cards["ben"]["status"] == "active"
    drift = client.get("/projects/bank/quality/drift", params={"margin": 0.1,
                                                                "min_count": 10}).json()
    assert drift["baseline_batches"] == [good] and drift["current_batches"] == [bad]
    assert [f["metric"] for f in drift["findings"]] == ["agreement"]


def test_gold_upload_label_errors_and_bad_input(client, settings, tmp_path):
    rows = banking_rows("train", LABELS, 4)
    assert client.post("/projects", json={"name": "bank", "labels": LABELS,
                                          "gold_share": 0.25}).status_code == 201
    r = client.post("/projects", json={"name": "x", "labels": LABELS, "gold_share": 0.9})
    assert r.status_code == 422
    r = client.post("/projects", json={"name": "x", "labels": LABELS, "calibration_share": 0.9})
    assert r.status_code == 422

    def count_items() -> int:
        with open_session(settings.db_url) as s:
            return s.scalar(select(func.count()).select_from(Item)) or 0

    unlabeled = write_csv(tmp_path / "nolabel.csv", rows, fields=("text",))
    with unlabeled.open("rb") as fh:
        r = client.post("/projects/bank/gold", files={"file": ("g.csv", fh, "text/csv")})
    assert r.status_code == 422 and r.json()["detail"]["where"] == "label"
    assert count_items() == 0  # nothing kept
    r = client.post("/projects/bank/gold", files={"file": ("g.txt", b"x", "text/plain")})
    assert r.status_code == 422 and r.json()["detail"]["where"] == "file"
    with write_csv(tmp_path / "gold.csv", rows).open("rb") as fh:
        r = client.post("/projects/bank/gold?label_field=category",
                        files={"file": ("gold.csv", fh, "text/csv")})
    assert r.status_code == 200 and r.json()["n_accepted"] == 32

    r = client.post("/projects/bank/quality/label-errors", json={"top": 5})
    assert r.status_code == 422 and "at least 10 labeled items" in r.json()["detail"]["message"]
    with open_session(settings.db_url) as s:
        first = s.scalar(select(func.min(Item.id)))  # ids from a rolled-back insert are gone
    r = client.post("/projects/bank/quality/rereview", json={"item_ids": [first]})
    assert r.status_code == 422 and "no label" in r.json()["detail"]["message"]
    r = client.post("/projects/bank/quality/rereview", json={"batch_id": 99})
    assert r.status_code == 404
    r = client.post("/projects/bank/annotators/nobody/reinstate", json={})
    assert r.status_code == 404
    assert client.get("/projects/bank/quality/drift?margin=2").status_code == 422
    assert client.get("/projects/nope/quality").status_code == 404
    drift = client.get("/projects/bank/quality/drift").json()
    assert drift["findings"] == [] and "closed batches" in drift["note"]
    report = client.get("/projects/bank/quality").json()
    assert report["gold"]["n_items"] == 32 and report["gold_share"] == 0.25
    assert client.get("/projects/bank/annotators").json() == []
