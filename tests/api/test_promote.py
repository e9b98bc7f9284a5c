"""A model trained without promotion stays the registry's candidate and leaves the live
pre-labeler alone; promoting it over HTTP makes it live and moves the alias."""

from __future__ import annotations

from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from labelloop.access.projects import get_project
from labelloop.api.app import create_app
from labelloop.core.enums import JobKind, JobStatus
from labelloop.ingest.service import ingest_file
from labelloop.jobs.service import get_job, run_job, submit_job
from labelloop.store.db import open_session
from labelloop.store.models import ModelVersion
from labelloop.versions.service import freeze_version
from tests.api.conftest import Team, admin_token, bearer
from tests.conftest import LABELS, banking_rows, write_csv


def _train(settings, promote: bool) -> int:  # noqa: ANN001
    with open_session(settings.db_url) as s:
        p = get_project(s, "bank")
        job = submit_job(s, settings, JobKind.TRAIN, by="mia", project=p, enqueue=False,
                         params={"train_version": "train-v1", "eval_version": "eval-v1",
                                 "promote": promote}).id
    assert run_job(settings, job) == JobStatus.DONE
    with open_session(settings.db_url) as s:
        return get_job(s, job).result["model_version_id"]


def test_a_candidate_is_promoted_over_http(settings, project_name, tmp_path):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "p.csv", banking_rows("train", LABELS, 12)),
                    label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "e.csv", banking_rows("test", LABELS, 6)),
                    label_field="category", split="eval")
        freeze_version(s, p), freeze_version(s, p, split="eval")
    live = _train(settings, promote=True)
    candidate = _train(settings, promote=False)
    registry = MlflowClient(tracking_uri=settings.tracking_uri)
    name = "labelloop-bank"

    def alias(which: str) -> str:
        return str(registry.get_model_version_by_alias(name, which).version)

    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    models = {m["id"]: m for m in client.get("/projects/bank/models").json()}
    assert client.get("/projects/bank").json()["active_model_id"] == live
    assert alias("prelabeler") == models[live]["registered_version"]
    assert alias("candidate") == models[candidate]["registered_version"]

    annotator = Team(settings).headers("ann", "annotator", "bank")
    r = client.post(f"/projects/bank/models/{candidate}/promote", headers=annotator)
    assert r.status_code == 403 and alias("prelabeler") == models[live]["registered_version"]
    r = client.post(f"/projects/bank/models/{candidate}/promote")
    assert r.status_code == 200, r.text
    assert client.get("/projects/bank").json()["active_model_id"] == candidate
    assert client.post("/projects/bank/models/999999/promote").status_code == 404
    assert alias("prelabeler") == models[candidate]["registered_version"]
    # a zero-shot model cannot be promoted: 4xx naming why, nothing changes
    with open_session(settings.db_url) as s:
        zero = ModelVersion(project_id=get_project(s, "bank").id, name="zero-shot/minilm",
                            kind="zero-shot", encoder="minilm")
        s.add(zero)
        s.flush()
        zero_id = zero.id
    r = client.post(f"/projects/bank/models/{zero_id}/promote")
    assert r.status_code in (400, 422) and "zero-shot" in r.text
    assert client.get("/projects/bank").json()["active_model_id"] == candidate
