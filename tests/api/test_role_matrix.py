"""Every route in the OpenAPI x every role, plus no token, a revoked token and a member of
another project: each answers as ``labelloop.access.policy`` says (allowed, 401, 403 or 404),
and an annotator's responses never carry another annotator's answers, gold flags or another
project's data."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from labelloop.access.policy import ALLOWED, Action
from labelloop.access.projects import get_project
from labelloop.access.users import create_token, revoke_token, user_for
from labelloop.api.app import ROUTERS, create_app
from labelloop.core.enums import Role
from labelloop.store.db import open_session
from labelloop.store.models import ApiToken, Batch, ModelVersion, Task
from tests.api.conftest import Team, add_target, bearer
from tests.conftest import LABELS, banking_rows, write_csv

PUBLIC = {("GET", "/health"), ("POST", "/auth/login")}
OWNER_OR_ADMIN = {"/users/{name}/tokens", "/tokens/{token_id}"}  # yours, or any as admin
SECRET_PROJECT = "zz-other-secret"
OTHER_ANNOTATOR = "ana-two"


def route_rule(route: APIRoute) -> tuple[str, Action | None]:
    """("project", action), ("global", action), ("caller", None) or ("public", None), read
    from the route's own dependencies (the policy the route really applies)."""
    stack = list(route.dependant.dependencies)
    kind, action = "public", None
    while stack:
        dep = stack.pop()
        if hasattr(dep.call, "action"):
            return "project", dep.call.action
        if hasattr(dep.call, "global_action"):
            kind, action = "global", dep.call.global_action
        elif getattr(dep.call, "__name__", "") == "get_caller" and kind == "public":
            kind = "caller"
        stack.extend(dep.dependencies)
    return kind, action


@pytest.fixture
def world(settings, tmp_path):
    """Project "bank" (pool, an eval version, an open batch with one task answered by
    another annotator), a secret second project, and one caller per case."""
    app = create_app(settings)
    from fastapi.testclient import TestClient

    team = Team(settings)
    admin = bearer(_admin_token(settings))
    client = TestClient(app)
    assert client.post("/projects", json={"name": "bank", "labels": LABELS},
                       headers=admin).status_code == 201
    assert client.post("/projects", json={"name": SECRET_PROJECT, "labels": LABELS},
                       headers=admin).status_code == 201
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 4), fields=("text",))
    evaluation = write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 2))
    for path, query in ((pool, ""), (evaluation, "?split=eval&label_field=category")):
        with path.open("rb") as fh:
            r = client.post(f"/projects/bank/ingest{query}", headers=admin,
                            files={"file": (path.name, fh, "text/csv")})
        assert r.status_code == 200, r.text
    assert client.post("/projects/bank/versions", json={"split": "eval", "name": "ev"},
                       headers=admin).status_code == 201
    job = client.post("/projects/bank/prelabel", headers=admin)  # no worker here: queued
    assert job.status_code == 202, job.text
    assert client.post("/projects/bank/batches", json={"size": 6, "seed": 0},
                       headers=admin).status_code == 201
    other = team.headers(OTHER_ANNOTATOR, Role.ANNOTATOR, "bank")
    task = client.post("/projects/bank/tasks/next", params={"limit": 1}, headers=other).json()[0]
    assert client.post(f"/projects/bank/tasks/{task['task_id']}/annotations",
                       json={"label": LABELS[0]}, headers=other).status_code == 201
    callers = {role.value: team.headers(f"user-{role.value}", role, "bank")
               for role in (Role.ANNOTATOR, Role.REVIEWER, Role.ML_TEAM)}
    callers["admin"] = admin
    callers["outsider"] = team.headers("outsider", Role.ML_TEAM, SECRET_PROJECT)
    callers["no token"] = {}
    with open_session(settings.db_url) as s:
        user = user_for(s, "gone")
        token, plain = create_token(s, user, "soon revoked")
        revoke_token(s, token.id, by=user)
        user_for(s, "temp")
        spare = create_token(s, user_for(s, "spare-owner"), "spare")[0].id
        batch_id = s.scalar(select(Batch.id).where(
            Batch.project_id == get_project(s, "bank").id))
        task_id = s.scalar(select(Task.id).where(Task.batch_id == batch_id).order_by(
            Task.id.desc()))
        model_id = s.scalar(select(ModelVersion.id).where(
            ModelVersion.project_id == get_project(s, "bank").id))
        item_id = s.scalar(select(Task.item_id).where(Task.id == task_id))
        target_id = add_target(s, "bank", model_id)
    callers["revoked"] = bearer(plain)
    params = {"project": "bank", "task_id": task_id, "batch_id": batch_id, "version": "ev",
              "annotator": OTHER_ANNOTATOR, "name": "temp", "token_id": spare,
              "job_id": job.json()["id"], "model_id": model_id, "item_id": item_id,
              "old": "ev", "new": "ev", "guideline_version": 1, "target_id": target_id}
    return app, client, callers, params


def _admin_token(settings) -> str:
    from tests.api.conftest import admin_token

    return admin_token(settings)


BODIES = {
    ("POST", "/projects"): lambda who: {"name": f"new-{who.replace(' ', '-')}",
                                        "labels": ["a", "b"]},
    ("POST", "/users"): lambda who: {"name": f"made-by-{who.replace(' ', '-')}"},
    ("PUT", "/projects/{project}/members"): lambda who: {"user": "temp", "role": "annotator"},
    ("POST", "/projects/{project}/batches"): lambda who: {"size": 1, "seed": 1},
    ("POST", "/projects/{project}/tasks/{task_id}/annotations"): lambda who: {
        "label": LABELS[1]},
}


def _send(client, method: str, path: str, params: dict, headers: dict, who: str):  # noqa: ANN001
    url = re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), path)
    body = BODIES.get((method, path), lambda _who: {})(who)
    if path.endswith(("/ingest", "/gold")):
        csv = b"text,label\nwhere is my new card,card_arrival\n"
        return client.request(method, url, headers=headers,
                              files={"file": ("x.csv", csv, "text/csv")})
    if method in ("GET", "DELETE"):
        return client.request(method, url, headers=headers)
    return client.request(method, url, headers=headers, json=body)


def _expected(kind: str, action: Action | None, path: str, who: str) -> str:
    if kind == "public":
        return "allowed"
    if who in ("no token", "revoked"):
        return "401"
    if kind == "caller":
        if path in OWNER_OR_ADMIN:
            return "allowed" if who == "admin" else "denied-owner"
        return "allowed"
    if kind == "global":
        return "allowed" if who == "admin" else "403"
    if who == "outsider":
        return "404"
    assert action is not None
    return "allowed" if Role(who) in ALLOWED[action] else "403"


def test_every_route_answers_as_the_policy_says(world):
    app, client, callers, params = world
    routes = [r for r in [*app.routes, *(r for router in ROUTERS for r in router.routes)]
              if isinstance(r, APIRoute) and r.include_in_schema]
    spec_ops = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert {(m, r.path) for r in routes for m in r.methods} == spec_ops  # every route seen
    order = ["annotator", "reviewer", "ml-team", "outsider", "no token", "revoked", "admin"]
    checked = 0
    for route in sorted(routes, key=lambda r: ("logout" in r.path, r.path)):
        kind, action = route_rule(route)
        for method in sorted(route.methods):
            if (method, route.path) not in PUBLIC:
                assert kind != "public", f"{method} {route.path} declares no access rule"
            for who in order:
                if route.path == "/auth/logout" and who not in ("no token", "revoked"):
                    continue  # revokes the caller's token: tested on its own below
                r = _send(client, method, route.path, params, callers[who], who)
                want = _expected(kind, action, route.path, who)
                detail = (r.json().get("detail") if r.headers.get("content-type", "")
                          .startswith("application/json") and isinstance(r.json(), dict)
                          else None) or {}
                where = detail.get("where") if isinstance(detail, dict) else None
                label = f"{method} {route.path} as {who}: {r.status_code} {r.text[:200]}"
                if want == "allowed":
                    assert r.status_code not in (401, 403) and r.status_code < 500, label
                    assert not (r.status_code == 404 and where == "project"), label
                elif want == "denied-owner":
                    assert r.status_code in (403, 404), label
                else:
                    assert str(r.status_code) == want, label
                    if want == "404":
                        assert where == "project", label
                if who in ("annotator", "outsider") and r.status_code < 300:
                    _no_leak(r.text, label)
                checked += 1
    assert checked > 150


def _no_leak(text: str, label: str) -> None:
    assert SECRET_PROJECT not in text or "outsider" in label, label
    assert OTHER_ANNOTATOR not in text, label
    if text.startswith(("{", "[")):
        keys = set(_keys(json.loads(text)))
        assert not keys & {"split", "given_label", "gold", "is_gold"}, label


def _keys(obj):  # noqa: ANN001, ANN202
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_logout_revokes_the_token_it_came_with(world, settings):
    _app, client, callers, _params = world
    me = callers["reviewer"]
    assert client.get("/users/me", headers=me).status_code == 200
    assert client.post("/auth/logout", headers=me).status_code == 204
    r = client.get("/users/me", headers=me)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    with open_session(settings.db_url) as s:
        assert s.scalar(select(ApiToken).where(ApiToken.name == "test")
                        .where(ApiToken.revoked_at.is_not(None))) is not None
