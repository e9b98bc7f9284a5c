"""One full round of the loop through the HTTP API, against SQLite, MiniLM and MLflow."""

from __future__ import annotations

import json
import os
import socket

import mlflow
from mlflow.tracking import MlflowClient

from labelloop.ingest.checks import content_hash
from labelloop.jobs.service import wait
from tests.conftest import CRITICAL, LABELS, banking_rows, write_csv


def test_full_round_over_http(client, team, settings, tmp_path):
    pool_rows = banking_rows("train", LABELS, 30)
    truth = {content_hash(r["text"]): r["category"] for r in pool_rows}
    pool = write_csv(tmp_path / "pool.csv", pool_rows, fields=("text",))
    evaluation = write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 12))

    r = client.post("/projects", json={"name": "bank", "labels": LABELS,
                                       "critical_labels": CRITICAL, "min_agreement": 0.3})
    assert r.status_code == 201, r.text
    with pool.open("rb") as fh:
        r = client.post("/projects/bank/ingest", files={"file": ("pool.csv", fh, "text/csv")})
    assert r.status_code == 200 and r.json()["n_accepted"] == 240
    with evaluation.open("rb") as fh:
        r = client.post("/projects/bank/ingest?split=eval&label_field=category",
                        files={"file": ("eval.csv", fh, "text/csv")})
    assert r.json()["n_accepted"] + r.json()["n_duplicates"] == 96  # pool dupes kept once

    with client:  # the server's lifespan: its job worker thread runs the pre-labeling
        r = client.post("/projects/bank/prelabel")
        assert r.status_code == 202 and r.json()["status"] == "queued"
        job = wait(settings, r.json()["id"])
    assert job.status == "done" and job.result["n_new"] == 240, job.last_error
    seen = client.get(r.headers["Location"]).json()
    assert (seen["done"], seen["total"], seen["fraction"]) == (240, 240, 1.0)
    r = client.post("/projects/bank/batches", json={"size": 40, "seed": 1})
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["n_tasks"] == 40 and batch["n_auto_accepted"] == 0  # zero-shot: no auto

    answered, qa_jobs = 0, []
    with client:  # the server's lifespan: its worker runs the batch's QA job
        for annotator in ("ana", "ben", "chen"):
            me = team.headers(annotator, "annotator", "bank")
            tasks = client.post("/projects/bank/tasks/next", params={"limit": 100},
                                headers=me).json()
            for t in tasks:
                assert t["prelabel"] in LABELS and t["reason"] in ("safety-critical",
                                                                    "low-confidence",
                                                                    "calibration")
                # the pre-label as a suggestion: value, score, model, probabilities by name
                hint = t["suggestion"]
                assert hint["value"] == {"label": t["prelabel"]}
                assert abs(hint["score"] - t["prelabel_confidence"]) < 1e-4  # (probs: 5 places)
                assert hint["model_version"].startswith("zero-shot/")
                assert set(hint["probs"]) == set(LABELS)
                assert max(hint["probs"], key=hint["probs"].get) == t["prelabel"]
                r = client.post(f"/projects/bank/tasks/{t['task_id']}/annotations",
                                json={"label": truth[content_hash(t["text"])],
                                      "seconds_spent": 3.5}, headers=me)
                assert r.status_code == 201, r.text
                answered += 1
                if r.json()["qa_job_id"] is not None:
                    qa_jobs.append(r.json()["qa_job_id"])
        # The last answer returned at once; the batch's QA runs as a job.
        assert len(qa_jobs) == 1
        qa_job = wait(settings, qa_jobs[0])
    assert answered >= 40
    assert qa_job.kind == "qa" and qa_job.status == "done", qa_job.last_error
    assert qa_job.result["status"] == "passed" and qa_job.result["ran"] is True

    qa = client.get(f"/projects/bank/batches/{batch['batch_id']}").json()
    assert qa["status"] == "passed", qa
    assert qa["qa"]["n_tasks"] == 40

    ev = client.post("/projects/bank/versions", json={"split": "eval"}).json()
    tr = client.post("/projects/bank/versions", json={"split": "train"}).json()
    assert tr["n_rows"] == 40 and len(tr["digest"]) == 64 and ev["n_rows"] >= 90
    with client:  # training is a job too
        r = client.post("/projects/bank/models",
                        json={"train_version": tr["name"], "eval_version": ev["name"]})
        assert r.status_code == 202, r.text
        trained = wait(settings, r.json()["id"])
    assert trained.status == "done", trained.last_error
    # the server's worker thread ran the training in a child process, with its settings
    assert trained.result["worker"] != f"{socket.gethostname()}:{os.getpid()}"
    model = client.get("/projects/bank/models").json()[-1]
    assert model["id"] == trained.result["model_version_id"]
    assert model["metrics"]["accuracy"] > 0.5 and model["registered_name"] == "labelloop-bank"
    # The recipe chosen out of fold: the API's model and the job's result say the same
    recipe = model["metrics"]["recipe"]
    assert recipe["recipe"] == trained.result["recipe"]["recipe"]
    assert recipe["scores"] == trained.result["recipe"]["scores"]
    assert recipe["recipe"] in recipe["scores"] or recipe["reason"] == "few labels"
    # Each stage of the training was noted in the job as it began
    stages = [entry["stage"] for entry in trained.result["stages"]]
    assert stages == [f"embed {tr['name']}", f"embed {ev['name']}"]

    mlflow.set_tracking_uri(settings.tracking_uri)
    run = MlflowClient().get_run(model["mlflow_run_id"])
    inputs = {_context(d): d for d in run.inputs.dataset_inputs}
    assert inputs["training"].dataset.digest == tr["digest"][:36]
    train_tags = {t.key: t.value for t in inputs["training"].tags}
    assert train_tags["labelloop.digest"] == tr["digest"]
    assert train_tags["labelloop.version_id"] == str(tr["id"])
    assert inputs["evaluation"].dataset.digest == ev["digest"][:36]
    assert run.data.tags["labelloop.train_digest"] == tr["digest"]

    exported = client.get(f"/projects/bank/versions/{tr['name']}/export?format=jsonl")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert len(rows) == 40
    # a GET that hands out data still leaves its audit record, committed on its own
    last = client.get("/projects/bank/audit", params={"limit": 1}).json()[0]
    assert (last["action"], last["target"]) == ("export", f"version {tr['id']}")
    lineage = rows[0]["lineage"]
    assert {"source", "annotators", "guideline_version", "prelabel_model",
            "batch_id", "licence"} <= set(lineage)
    assert lineage["prelabel_model"].startswith("zero-shot/")
    # why each row reached a person; 10% of the batch is the random calibration sample
    reasons = [r["lineage"]["reason"] for r in rows]
    assert set(reasons) <= {"safety-critical", "low-confidence", "calibration"}
    assert reasons.count("calibration") == 4

    # The trained model is now the pre-labeler of the next round.
    nxt = client.post("/projects/bank/batches", json={"size": 20, "seed": 2}).json()
    assert nxt["model_version_id"] == model["id"]
    assert nxt["n_tasks"] >= 20


def _context(dataset_input) -> str:  # noqa: ANN001
    return {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"]


def test_openapi_lists_the_loop(client):
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/projects", "/projects/{project}/ingest", "/projects/{project}/batches",
            "/projects/{project}/tasks", "/projects/{project}/tasks/{task_id}/annotations",
            "/projects/{project}/versions", "/projects/{project}/models"} <= paths
    assert client.get("/docs").status_code == 200

