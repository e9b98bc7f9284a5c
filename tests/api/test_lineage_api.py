"""Lineage, version diffs and guideline versions over HTTP; bad input is a 4xx that names
what is wrong, and changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from labelloop.access.projects import get_project
from labelloop.api.app import create_app
from labelloop.ingest.checks import content_hash
from labelloop.store.db import open_session
from labelloop.store.models import ModelVersion
from labelloop.versions.service import freeze_version
from tests.api.conftest import Team, admin_token, bearer
from tests.versions.test_versions import run_batch, truth  # noqa: F401  (fixture)


def test_lineage_and_guidelines_over_http(settings, project_name, truth):  # noqa: F811
    with open_session(settings.db_url) as s:
        get_project(s, project_name).overlap = 2
    batch = run_batch(settings, project_name, lambda who, text: truth[content_hash(text)])
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        v1 = freeze_version(s, p)
        model = ModelVersion(project_id=p.id, name="classifier/train-v1", kind="classifier",
                             encoder="e", train_version_id=v1.id, mlflow_run_id="run-1")
        s.add(model)
        s.flush()
        model_id = model.id
    client = TestClient(create_app(settings), headers=bearer(admin_token(settings)))
    base = f"/projects/{project_name}"

    up = client.get(f"{base}/models/{model_id}/lineage").json()
    assert up["train"]["annotators"] == {"ana": 10, "ben": 10}
    assert up["train"]["batches"][0]["batch_id"] == batch and up["lineage_completeness"] == 1.0
    page = client.get(f"{base}/models/{model_id}/items", params={"annotator": "ana",
                                                                 "limit": 3}).json()
    assert page["count"] == 10 and len(page["rows"]) == 3
    item_id = page["rows"][0]["item_id"]
    assert page["rows"][0]["event"]["reason"] == "answer"
    down = client.get(f"{base}/items/{item_id}/lineage").json()
    assert [m["id"] for m in down["models"]] == [model_id]
    assert [v["name"] for v in down["versions"]] == [v1.name]
    diff = client.get(f"{base}/versions/{v1.name}/diff/{v1.id}").json()
    assert (diff["added"], diff["removed"], diff["relabeled"]) == (0, 0, 0)

    # guidelines: a change by the ml-team, then every version readable, by annotators too
    lead = Team(settings).headers("lead", "ml-team", project_name)
    r = client.put(f"{base}/guideline", headers=lead, json={
        "text": "Top-ups are their own label now.", "note": "split top-ups",
        "labels": ["top_up_limits"]})
    assert r.status_code == 200 and r.json()["guideline_version"] == 2, r.text
    annotator = Team(settings).headers("ana-g", "annotator", project_name)
    history = client.get(f"{base}/guidelines", headers=annotator).json()
    assert [(g["version"], g["created_by"]) for g in history] == [(1, ""), (2, "lead")]
    assert history[1]["labels"] == ["top_up_limits"] and history[1]["note"] == "split top-ups"
    assert client.get(f"{base}/guidelines/2", headers=annotator).json()["text"].startswith("Top")

    # bad input: 4xx naming what and where; nothing stored changes
    r = client.put(f"{base}/guideline", headers=lead, json={"text": "x", "labels": ["nope"]})
    assert r.status_code == 422 and "nope" in r.text, r.text
    assert len(client.get(f"{base}/guidelines").json()) == 2
    assert client.get(f"{base}/guidelines/9").status_code == 404
    assert client.get(f"{base}/models/999999/lineage").json()["detail"]["where"] == "model"
    assert client.get(f"{base}/items/999999/lineage").status_code == 404
    assert client.get(f"{base}/models/{model_id}/items", params={"limit": 0}).status_code == 422
    assert client.get(f"{base}/models/{model_id}/items",
                      params={"split": "eval"}).status_code == 404  # it has no eval version
    assert client.get(f"{base}/versions/nope/diff/{v1.name}").json()["detail"]["where"] == \
        "version"
    assert client.get(f"{base}/models/{model_id}/lineage",
                      headers=annotator).status_code == 403
