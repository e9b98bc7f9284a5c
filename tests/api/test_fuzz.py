"""Schemathesis over the whole OpenAPI, as the admin: no answer is a 5xx (nor an exception
escaping the app), and every answer matches the response schema the OpenAPI documents.

Each operation gets positive and negative cases (bounded and derandomized: the same cases
on every run). The Authorization header is fixed in every case, so negative cases break the
request, never the credentials. Path parameters are sometimes pinned to a real world
(project "bank" with a pool, an eval version "ev", a batch and an answer), with a valid
body for the operations whose interesting code sits behind one, so that requests reach the
code behind the 404s and 409s. Uploads are sometimes replaced by generated CSV / TSV /
JSONL / JSON / Parquet files with their real suffix (schemathesis names a file part after
its field, without suffix, which the upload check refuses before any reader runs).
``POST /auth/logout`` runs with a throwaway token each time, and the admin's own token is
never revoked through ``DELETE /tokens/{token_id}``. Every failure is collected; all are
reported at once.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select

from labelloop.access.users import bootstrap_admin, create_token, user_for
from labelloop.api.app import create_app
from labelloop.store.db import open_session
from labelloop.store.models import ApiToken, Batch, ModelVersion, Task
from tests.api.conftest import Team, add_target, admin_token, bearer
from tests.conftest import LABELS, banking_rows, write_csv

# Per operation: at most this many positive and negative cases each (LABELLOOP_FUZZ_EXAMPLES
# for a deeper run). The PostgreSQL pass sends half as many: the API's logic is fuzzed on the
# SQLite pass, this one looks for what only the other database refuses (NUL characters,
# integer ranges). 20 keeps the suite under 20 minutes with 47 operations.
_EXAMPLES = int(os.environ.get("LABELLOOP_FUZZ_EXAMPLES", "20"))
EXAMPLES_PER_MODE = _EXAMPLES // 2 if os.environ.get("LABELLOOP_TEST_DB") == "postgres" \
    else _EXAMPLES
MIN_REQUESTS = 30 * EXAMPLES_PER_MODE  # most operations take their share
CHECKS = [not_a_server_error, response_schema_conformance]
LOGOUT = ("POST", "/auth/logout")
REVOKE = ("DELETE", "/tokens/{token_id}")
UPLOADS = {("POST", "/projects/{project}/ingest"), ("POST", "/projects/{project}/gold")}


def world_bodies(world: dict[str, object]) -> dict[tuple[str, str], object]:
    """Valid bodies that take an operation past its 404s, sent with the world's path
    parameters (query parameters are still generated)."""
    return {
        ("POST", "/projects/{project}/batches"): {"size": 2, "seed": 1},
        ("POST", "/projects/{project}/batches/{batch_id}/resolve"): {
            "corrections": {}, "note": "fuzz"},
        ("POST", "/projects/{project}/tasks/{task_id}/annotations"): {"label": LABELS[1]},
        ("POST", "/projects/{project}/annotators/{annotator}/reinstate"): {"note": "fuzz"},
        ("POST", "/projects/{project}/quality/label-errors"): {"top": 5},
        ("POST", "/projects/{project}/quality/rereview"): {"batch_id": world["batch_id"]},
        ("POST", "/projects/{project}/versions"): {"split": "eval", "name": "ev2"},
        ("POST", "/projects/{project}/models"): {"train_version": "tr", "eval_version": "ev"},
        ("PUT", "/projects/{project}/members"): {"user": "temp", "role": "reviewer"},
        ("POST", "/users/{name}/tokens"): {"name": "fuzz"},
    }


def _build_world(client, settings, tmp_path, admin: dict[str, str]) -> dict[str, object]:
    """Project "bank": an unlabeled pool, labeled pool rows, a train version "tr", an eval
    version "ev", one batch with one answered task; a user "temp" and a spare token.
    Returns a real value for every path parameter."""
    r = client.post("/projects", json={"name": "bank", "labels": LABELS}, headers=admin)
    assert r.status_code == 201, r.text
    unlabeled = banking_rows("train", LABELS, 4)
    labeled = [row for row in banking_rows("train", LABELS, 7) if row not in unlabeled]
    files = ((write_csv(tmp_path / "pool.csv", unlabeled, fields=("text",)), ""),
             (write_csv(tmp_path / "labeled.csv", labeled), "?label_field=category"),
             (write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 2)),
              "?split=eval&label_field=category"))
    for path, query in files:
        r = client.post(f"/projects/bank/ingest{query}", headers=admin,
                        files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert r.status_code == 200 and r.json()["n_accepted"] > 0, r.text
    for split, name in (("eval", "ev"), ("train", "tr")):
        r = client.post("/projects/bank/versions", json={"split": split, "name": name},
                        headers=admin)
        assert r.status_code == 201, r.text
    r = client.post("/projects/bank/batches", json={"size": 6, "seed": 0}, headers=admin)
    assert r.status_code == 201, r.text
    ana = Team(settings).headers("ana", "annotator", "bank")
    task = client.post("/projects/bank/tasks/next", params={"limit": 1}, headers=ana).json()[0]
    r = client.post(f"/projects/bank/tasks/{task['task_id']}/annotations",
                    json={"label": LABELS[0]}, headers=ana)
    assert r.status_code == 201, r.text
    job = client.post("/projects/bank/prelabel", headers=admin)  # queued (no worker here)
    assert job.status_code == 202, job.text
    with open_session(settings.db_url) as s:
        user_for(s, "temp")
        spare = create_token(s, user_for(s, "spare-owner"), "spare")[0].id
        batch_id = s.scalar(select(Batch.id).order_by(Batch.id))
        task_id = s.scalar(select(Task.id).where(Task.batch_id == batch_id).order_by(Task.id))
        item_id = s.scalar(select(Task.item_id).where(Task.id == task_id))
        model_id = s.scalar(select(ModelVersion.id).order_by(ModelVersion.id))
        target_id = add_target(s, "bank", model_id)
    return {"project": "bank", "batch_id": batch_id, "task_id": task_id, "version": "ev",
            "annotator": "ana", "name": "temp", "token_id": spare, "job_id": job.json()["id"],
            "item_id": item_id, "model_id": model_id, "old": "tr", "new": "ev",
            "guideline_version": 1, "target_id": target_id}


# -- generated upload files -----------------------------------------------------------------

FIELDS = st.sampled_from(["text", "label", "id"]) | st.sampled_from(["category", "licence"]) \
    | st.text(max_size=8)
VALUES = (st.text(max_size=40) | st.sampled_from(LABELS)
          | st.sampled_from(["my card has not arrived", "how do I change my PIN?", " ", ""]))
JSON_VALUES = VALUES | st.none() | st.booleans() | st.integers() | st.floats() \
    | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers(),
                                                            max_size=2)


@st.composite
def upload_files(draw) -> tuple[str, bytes]:  # noqa: ANN001
    """(filename, content): a small CSV, TSV, JSONL, JSON or Parquet file of generated rows,
    or generated bytes under an accepted suffix."""
    kind = draw(st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet", "junk"]))
    fields = draw(st.lists(FIELDS, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(0, 4))
    if kind in ("csv", "tsv"):
        rows = [[draw(VALUES) for _ in fields] for _ in range(n)]
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t" if kind == "tsv" else ",")
        w.writerow(fields)
        w.writerows(rows)
        return f"up.{kind}", buf.getvalue().encode("utf-8")
    if kind in ("jsonl", "json"):
        rows = [draw(st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES)
                for _ in range(n)]
        if kind == "json":
            return "up.json", json.dumps(rows if draw(st.booleans()) else
                                         (rows[0] if rows else {})).encode()
        return "up.jsonl", "\n".join(json.dumps(r) for r in rows).encode()
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {f: [draw(VALUES | st.none()) for _ in range(n)] for f in fields}
        if fields and draw(st.booleans()):  # a column of numbers where text is expected
            columns[fields[0]] = [draw(st.integers(-5, 5)) for _ in range(n)]
        buf = io.BytesIO()
        pq.write_table(pa.table(columns), buf)
        return "up.parquet", buf.getvalue()
    suffix = draw(st.sampled_from([".csv", ".jsonl", ".json", ".parquet", ".tsv"]))
    return f"up{suffix}", draw(st.binary(max_size=200))


# -- the run ---------------------------------------------------------------------------------

def _short(text: object, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _text(response) -> str:  # noqa: ANN001
    return response.content.decode("utf-8", errors="replace")


def _strategy(operation, mode: GenerationMode, world: dict[str, object],
              auth: dict[str, str], bodies: dict[tuple[str, str], object]):
    """Cases with generated path parameters, or with the project (or every path parameter,
    and then a valid body where one is known) pinned to the world."""
    key = (operation.method.upper(), operation.path)
    names = [p.name for p in operation.path_parameters]
    options = [operation.as_strategy(generation_mode=mode, headers=auth)]
    if "project" in names:
        options.append(operation.as_strategy(generation_mode=mode, headers=auth,
                                             path_parameters={"project": "bank"}))
    if names and names != ["project"]:
        options.append(operation.as_strategy(generation_mode=mode, headers=auth,
                                             path_parameters={n: world[n] for n in names}))
    if key in UPLOADS:  # the fields the generated files name
        options.append(operation.as_strategy(
            generation_mode=mode, headers=auth, path_parameters={"project": "bank"},
            query={"text_field": "text", "label_field": "label"}))
    if key in bodies and mode == GenerationMode.POSITIVE:
        options.append(operation.as_strategy(generation_mode=mode, headers=auth,
                                             path_parameters={n: world[n] for n in names},
                                             body=bodies[key]))
    return st.one_of(options)


def _has_input(operation) -> bool:  # noqa: ANN001
    """Whether a negative case can break something other than the credentials."""
    return len(operation.body) > 0 or any(
        p.name.lower() != "authorization" for p in operation.iter_parameters())


def test_fuzz_whole_api(settings, tmp_path) -> None:
    app = create_app(settings)
    admin = bearer(admin_token(settings))
    with open_session(settings.db_url) as s:
        admin_token_id = s.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with asgi.get_client(app) as client:
        world = _build_world(client, settings, tmp_path, admin)
    bodies = world_bodies(world)

    def throwaway_token() -> dict[str, str]:
        with open_session(settings.db_url) as s:
            return bearer(create_token(s, bootstrap_admin(s), "fuzz-logout")[1])

    sent = 0
    statuses: Counter[int] = Counter()
    by_operation: dict[str, Counter[int]] = {}
    failures: dict[tuple[str, str, str], list] = {}  # (op, status, kind) -> [n, cause, repro]
    generation_errors: list[str] = []

    def record(case, status: int, kind: str, cause: str, upload) -> None:  # noqa: ANN001
        key = (case.operation.label, str(status), kind)
        if key in failures:
            failures[key][0] += 1
            return
        try:
            repro = case.as_curl_command(headers={"Authorization": "Bearer <admin>"})
        except Exception:  # noqa: BLE001 - a reproduction hint only
            repro = repr(case)
        if upload is not None:
            repro += f"  [upload {upload[0]}: {upload[1][:200]!r}]"
        failures[key] = [1, _short(cause, 700), repro]

    def exercise(operation, case, upload) -> None:  # noqa: ANN001
        nonlocal sent
        key = (operation.method.upper(), operation.path)
        if key == REVOKE and case.path_parameters.get("token_id") == admin_token_id:
            case.path_parameters["token_id"] = world["token_id"]
        headers = throwaway_token() if key == LOGOUT else admin
        extra = {} if upload is None else {"files": {"file": (upload[0], upload[1])}}
        sent += 1
        try:
            response = case.call(headers=headers, **extra)
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app: a 500
            statuses[500] += 1
            by_operation.setdefault(operation.label, Counter())[500] += 1
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if "/work/main/" in f.filename
                    and "/.venv/" not in f.filename and "/tests/" not in f.filename]
            at = f" at {ours[-1].filename}:{ours[-1].lineno} ({ours[-1].name})" if ours else ""
            record(case, 500, "unhandled exception", f"{type(exc).__name__}: {exc}{at}",
                   upload)
            return
        statuses[response.status_code] += 1
        by_operation.setdefault(operation.label, Counter())[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, Failure) as exc:
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else (exc,):
                record(case, response.status_code, failure.title,
                       f"{failure.message} | body: {_text(response)[:300]}", upload)

    def fuzz(operation, mode: GenerationMode) -> None:  # noqa: ANN001
        """Up to EXAMPLES_PER_MODE cases of one operation, all sent and checked."""
        is_upload = (operation.method.upper(), operation.path) in UPLOADS
        uploads = st.none() | upload_files() if is_upload else st.none()

        @hsettings(max_examples=EXAMPLES_PER_MODE, deadline=None, derandomize=True,
                   database=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck), print_blob=False)
        @given(case=_strategy(operation, mode, world, admin, bodies), upload=uploads)
        def run(case, upload) -> None:  # noqa: ANN001
            exercise(operation, case, upload)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - the strategy could not make cases
            generation_errors.append(f"{operation.label} [{mode.value}]: "
                                     f"{type(exc).__name__}: {_short(exc, 200)}")

    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, [op.label for op in operations]
    for operation in operations:
        fuzz(operation, GenerationMode.POSITIVE)
        if _has_input(operation):
            fuzz(operation, GenerationMode.NEGATIVE)
    elapsed = time.monotonic() - started

    print(f"\nschemathesis: {sent} requests to {len(operations)} operations in {elapsed:.1f}s;"
          f" statuses {dict(sorted(statuses.items()))}")
    for label, counts in by_operation.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    for line in generation_errors:
        print(f"  could not generate: {line}")

    with asgi.get_client(app) as client:  # the admin's token survived the run
        assert client.get("/users/me", headers=admin).status_code == 200
    assert sent > MIN_REQUESTS, f"only {sent} requests were sent"
    assert statuses[401] < sent // 20, f"too many 401s: {dict(statuses)}"
    assert not generation_errors, "\n".join(generation_errors)
    report = "\n".join(
        f"- {label} -> {status}: {kind} (x{n})\n    cause: {cause}\n    repro: {repro}"
        for (label, status, kind), (n, cause, repro) in sorted(failures.items()))
    if failures:
        pytest.fail(f"{len(failures)} kinds of failure over {sent} requests:\n{report}",
                    pytrace=False)
