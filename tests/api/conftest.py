from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelloop.access.projects import get_project
from labelloop.access.users import add_member, bootstrap_admin, create_token, user_for
from labelloop.api.app import create_app
from labelloop.core.enums import Role
from labelloop.core.settings import Settings
from labelloop.jobs.service import wait
from labelloop.store.db import open_session


def bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


class Team:
    """People with tokens: ``headers(name, role, project)`` makes the user (once), gives
    them ``role`` in ``project`` and returns their Authorization header."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tokens: dict[str, str] = {}

    def headers(self, name: str, role: Role | str = Role.ANNOTATOR,
                project: str | None = None) -> dict[str, str]:
        with open_session(self.settings.db_url) as s:
            user = user_for(s, name)
            if project is not None:
                add_member(s, get_project(s, project), user, role)
            if name not in self._tokens:
                self._tokens[name] = create_token(s, user, "test")[1]
        return bearer(self._tokens[name])


def admin_token(settings: Settings) -> str:
    with open_session(settings.db_url) as s:
        return create_token(s, bootstrap_admin(s), "test-admin")[1]


@pytest.fixture
def client(settings) -> TestClient:
    """A client signed in as the admin."""
    return TestClient(create_app(settings), headers=bearer(admin_token(settings)))


@pytest.fixture
def team(settings) -> Team:
    return Team(settings)


def qa_done(settings: Settings, answer: dict) -> None:
    """When ``answer`` (an answer's JSON) completed its batch, wait for the batch's QA job
    (run by the server's worker: the client must be inside ``with client:``)."""
    if answer.get("qa_job_id") is not None:
        job = wait(settings, answer["qa_job_id"], timeout_s=120)
        assert job.status == "done", (job.status, job.last_error)


def add_target(session, project_name: str, model_id: int) -> int:  # noqa: ANN001
    """A remediation target in the project (a boost on its first label), for route tables."""
    from labelloop.access.projects import get_project
    from labelloop.store.models import RemediationTarget

    p = get_project(session, project_name)
    target = RemediationTarget(project_id=p.id, model_id=model_id, kind="f1-drop",
                               labels=[p.labels[0]], figure=0.2, baseline=0.9,
                               message="F1 fell", evidence={"item_ids": []}, action="boost",
                               owner="admin", status="acting")
    session.add(target)
    session.flush()
    return target.id
