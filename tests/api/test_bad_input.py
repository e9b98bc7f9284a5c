"""Bad input at the API: a clear 4xx that says what and where, and the store unchanged."""

from __future__ import annotations

from sqlalchemy import func, select

from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch, Item, Project
from tests.conftest import LABELS


def counts(settings) -> tuple[int, int, int, int]:
    with open_session(settings.db_url) as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) or 0
                     for t in (Project, Item, Batch, Annotation))


def make_project(client, pool_csv) -> None:
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    with pool_csv.open("rb") as fh:
        r = client.post("/projects/bank/ingest",  # no labels: a pool to select from
                        files={"file": ("pool.csv", fh, "text/csv")})
    assert r.status_code == 200


def test_project_schema_errors(client, settings):
    r = client.post("/projects", json={"name": "p", "labels": ["a", "a", "b"]})
    assert r.status_code == 422
    assert r.json()["detail"] == {"error": "ValidationError", "message": "duplicate labels: ['a']",
                                  "where": "labels"}
    r = client.post("/projects", json={"name": "p", "labels": ["a", "b"],
                                       "critical_labels": ["c"]})
    assert r.status_code == 422 and r.json()["detail"]["where"] == "critical_labels"
    r = client.post("/projects", json={"name": "p", "labels": ["a"]})
    assert r.status_code == 422  # pydantic: at least two labels
    assert client.post("/projects", json={"name": "p", "labels": ["a", "b"]}).status_code == 201
    r = client.post("/projects", json={"name": "p", "labels": ["a", "b"]})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]["message"]
    assert counts(settings)[0] == 1
    r = client.get("/projects/nope")
    assert r.status_code == 404 and r.json()["detail"]["where"] == "project"


def test_bad_uploads_leave_store_unchanged(client, settings, pool_csv):
    make_project(client, pool_csv)
    before = counts(settings)
    r = client.post("/projects/bank/ingest", files={"file": ("x.txt", b"hi", "text/plain")})
    assert r.status_code == 422 and r.json()["detail"]["where"] == "file"
    r = client.post("/projects/bank/ingest",
                    files={"file": ("x.parquet", b"PAR1junk", "application/octet-stream")})
    assert r.status_code == 422 and "cannot read Parquet" in r.json()["detail"]["message"]
    r = client.post("/projects/bank/ingest?split=test",
                    files={"file": ("x.csv", b"text\nhello\n", "text/csv")})
    assert r.status_code == 422
    assert counts(settings) == before
    # A file with one bad row: the row is reported, the good row goes in.
    body = b'{"text": "my card has not arrived yet"}\n{"text": ""}\n'
    r = client.post("/projects/bank/ingest", files={"file": ("x.jsonl", body, "text/plain")})
    assert r.status_code == 200
    assert r.json()["rejections"] == [{"row": 2, "field": "text", "reason": "text is empty"}]
    assert counts(settings)[1] == before[1] + 1


def test_bad_batch_and_annotation_requests(client, team, settings, pool_csv):
    make_project(client, pool_csv)
    r = client.post("/projects/bank/batches", json={"size": 5, "strategy": "psychic"})
    assert r.status_code == 422 and "psychic" in r.json()["detail"]["message"]
    assert counts(settings)[2] == 0
    r = client.post("/projects/bank/batches", json={"size": 0})
    assert r.status_code == 422
    batch = client.post("/projects/bank/batches", json={"size": 3, "seed": 0}).json()
    assert batch["n_tasks"] == 3
    ana = team.headers("ana", "annotator", "bank")
    task = client.post("/projects/bank/tasks/next", headers=ana).json()[0]
    url = f"/projects/bank/tasks/{task['task_id']}/annotations"
    before = counts(settings)
    r = client.post(url, json={"label": "not_a_label"}, headers=ana)
    assert r.status_code == 422 and r.json()["detail"]["where"] == "label"
    r = client.post("/projects/bank/tasks/99999/annotations", json={"label": LABELS[0]},
                    headers=ana)
    assert r.status_code == 404
    r = client.post(url, json={"label": LABELS[0], "seconds_spent": -1}, headers=ana)
    assert r.status_code == 422 and r.json()["detail"]["where"] == "body.seconds_spent"
    r = client.post(url, json={"status": "skipped"}, headers=ana)
    assert r.status_code == 422 and r.json()["detail"]["where"] == "skip_reason"
    assert counts(settings) == before
    ok = client.post(url, json={"label": LABELS[0]}, headers=ana)
    assert ok.status_code == 201 and ok.json()["value"] == {"label": LABELS[0]}
    # Until the batch closes, answering again changes the answer (one answer is kept).
    again = client.post(url, json={"label": LABELS[1]}, headers=ana)
    assert again.status_code == 200 and again.json()["label"] == LABELS[1]
    assert again.json()["id"] == ok.json()["id"]
    r = client.post(url, json={"status": "skipped", "skip_reason": "unsure"}, headers=ana)
    assert r.status_code == 409
    assert counts(settings)[3] == before[3] + 1


def test_freeze_with_nothing_accepted_is_refused(client, pool_csv):
    assert client.post("/projects", json={"name": "empty", "labels": LABELS}).status_code == 201
    r = client.post("/projects/empty/versions", json={"split": "train"})
    assert r.status_code == 422 and "no accepted train labels" in r.json()["detail"]["message"]
    r = client.post("/projects/empty/versions", json={"split": "nonsense"})
    assert r.status_code == 422


def test_hostile_ids_names_and_numbers_get_a_4xx_and_change_nothing(client, settings,
                                                                    pool_csv):
    """Ids past 64 bits, non-ASCII digits, negative seeds, lone surrogates, names that are
    paths, a 10 MB name, settings out of range, an empty file: each a 4xx in one shape that
    says where, never a 500; nothing stored changes and no huge input is echoed."""
    make_project(client, pool_csv)
    before = counts(settings)
    cases = [
        ("GET", "/projects/99999999999999999999999", None, 404),
        ("GET", "/projects/%D9%A1%D9%A2", None, 404),  # Arabic-Indic digits
        ("GET", "/projects/bank/batches/18446744073709551616", None, 422),
        ("POST", "/projects/bank/tasks/99999999999999999999/annotations", {"label": "x"}, 422),
        ("POST", "/projects/bank/batches", {"size": 3, "seed": -1}, 422),
        ("POST", "/projects/bank/batches", {"size": 10**9}, 422),
        ("POST", "/projects", {"name": "../x", "labels": ["a", "b"]}, 422),
        ("POST", "/projects", {"name": "a/b", "labels": ["a", "b"]}, 422),
        ("POST", "/projects", {"name": "x" * 10_000_000, "labels": ["a", "b"]}, 422),
        ("PATCH", "/projects/bank", {"audit_share": -0.1}, 422),
        ("PATCH", "/projects/bank", {"confidence_threshold": 1.5}, 422),
        ("POST", "/projects/bank/versions", {"split": "train", "name": "../up"}, 422),
    ]
    for method, url, body, status in cases:
        r = client.request(method, url, json=body)
        assert r.status_code == status, (method, url[:80], r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert set(detail) == {"error", "message", "where"}, detail
        assert len(r.content) < 2_000, (url[:80], len(r.content))
    # A lone surrogate in a JSON string, as raw bytes (json.dumps would refuse to write it).
    raw = b'{"name": "bad\\ud800name", "labels": ["a", "b"]}'
    r = client.post("/projects", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]["where"] == "body.name"
    assert "unicode" in r.json()["detail"]["message"]
    for body in (b"", b"text\n"):
        r = client.post("/projects/bank/ingest", files={"file": ("e.csv", body, "text/csv")})
        assert r.status_code == 422 and "no rows" in r.json()["detail"]["message"]
    assert counts(settings) == before
    assert client.get("/projects/bank").json()["audit_share"] == 0.05


def test_bad_training_and_job_requests_get_a_4xx_and_queue_nothing(client, settings,
                                                                   pool_csv, eval_csv):
    from labelloop.store.models import Job

    client.post("/projects", json={"name": "bank", "labels": LABELS})
    with eval_csv.open("rb") as fh:
        client.post("/projects/bank/ingest?split=eval&label_field=category",
                    files={"file": ("e.csv", fh, "text/csv")})
    assert client.post("/projects/bank/versions", json={"split": "eval", "name": "ev"}
                       ).status_code == 201
    cases = [
        ("/projects/bank/models", {"train_version": "ev"}, 422, "train_version"),
        ("/projects/bank/models", {"train_version": "nope"}, 404, "version"),
        ("/projects/bank/models", {"train_version": "ev", "c": -1}, 422, "body.c"),
    ]
    for path, body, code, where in cases:
        r = client.post(path, json=body)
        assert r.status_code == code, (body, r.text)
        assert where in (r.json()["detail"]["where"] or ""), r.text
    for path in ("/projects/bank/jobs/99", "/projects/bank/jobs/99/cancel"):
        r = client.request("GET" if path.endswith("99") else "POST", path)
        assert r.status_code == 404 and r.json()["detail"]["where"] == "job_id"
    assert client.get("/projects/bank/jobs/0").status_code == 422
    with open_session(settings.db_url, read_only=True) as s:
        assert s.scalar(select(func.count(Job.id))) == 0  # nothing was queued
