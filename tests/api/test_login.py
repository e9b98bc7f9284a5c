"""Signing in with a password: a token, and the cookie session the web pages will use, whose
unsafe requests need the CSRF token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from labelloop.api.app import create_app
from tests.conftest import LABELS


def test_login_token_cookie_and_csrf(client, settings):
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    r = client.post("/users", json={"name": "rita", "role": "annotator",
                                    "password": "correct horse"})
    assert r.status_code == 201
    assert client.put("/projects/bank/members",
                      json={"user": "rita", "role": "reviewer"}).status_code == 200
    browser = TestClient(create_app(settings))  # no Authorization header
    for name, password in (("rita", "wrong horse"), ("nobody", "correct horse")):
        r = browser.post("/auth/login", json={"name": name, "password": password})
        assert r.status_code == 401 and r.json()["detail"]["message"] == "wrong name or password"
    r = browser.post("/auth/login", json={"name": "rita", "password": "correct horse"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["name"] == "rita" and body["token"].startswith("ll_")
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert TestClient(create_app(settings)).get("/users/me", headers=bearer).json()["name"] \
        == "rita"
    # The cookie alone: reads work, an unsafe request needs X-CSRF-Token.
    assert browser.get("/projects/bank").status_code == 200
    r = browser.post("/projects/bank/quality/rereview", json={"item_ids": [1]})
    assert r.status_code == 403 and r.json()["detail"]["where"] == "X-CSRF-Token"
    r = browser.post("/projects/bank/quality/rereview", json={"item_ids": [1]},
                     headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code not in (401, 403)
    assert browser.post("/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]}
                        ).status_code == 204
    assert browser.get("/projects/bank").status_code == 401
    audit = client.get("/audit").json()
    assert [e["detail"].get("event") for e in audit if e["actor"] == "rita"] == ["logout",
                                                                                 "login"]
