"""Request-scoped dependencies: settings, the unit of work, who is asking and what they may do.

The unit of work ends (commits) *before* the response is sent (``scope="function"``): a 2xx
means the change is on disk. Callers prove who they are with ``Authorization: Bearer``; a
browser page may instead carry the signed session cookie set at login, and then every
unsafe request must echo the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from labelloop.access.policy import Action, authorize, authorize_global
from labelloop.access.projects import get_project
from labelloop.access.users import authenticate
from labelloop.core.enums import Role
from labelloop.core.errors import AuthenticationError, PermissionDeniedError
from labelloop.core.settings import Settings
from labelloop.store.db import open_session
from labelloop.store.models import ApiToken, Project, User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID = 2**63 - 1  # the largest id a database integer column holds
bearer = HTTPBearer(auto_error=False, description="An API token: ll_<id>_<secret>")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(request: Request, settings: SettingsDep) -> Iterator[Session]:
    """One unit of work per request, committed before the response goes out. GET and HEAD
    only read (so they never wait on SQLite's write lock); they cannot write."""
    with open_session(settings.db_url,
                      read_only=request.method in SAFE_METHODS) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass
class Caller:
    user: User
    token: ApiToken
    via_cookie: bool


def get_caller(request: Request, session: SessionDep,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
               ) -> Caller:
    """The authenticated caller: a bearer token, else the login cookie (with CSRF check)."""
    if credentials is not None:
        user, token = authenticate(session, credentials.credentials)
        return Caller(user, token, via_cookie=False)
    cookie = request.scope.get("session") or {}
    plain = cookie.get("token") if isinstance(cookie, dict) else None
    if not plain:
        raise AuthenticationError("sign in: send Authorization: Bearer <token>",
                                  where="Authorization")
    user, token = authenticate(session, plain)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, str(cookie.get("csrf", ""))):
            raise PermissionDeniedError("missing or wrong X-CSRF-Token for a cookie session",
                                        where="X-CSRF-Token")
    return Caller(user, token, via_cookie=True)


CallerDep = Annotated[Caller, Depends(get_caller)]
ProjectRef = Annotated[str, Path(min_length=1, max_length=200,
                                 description="The project's name or id")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass
class Access:
    """A caller allowed to act in a project, and their role there."""

    user: User
    project: Project
    role: Role


def require(action: Action):  # noqa: ANN201 - a FastAPI dependency
    """A dependency: the caller, the project named in the path, and a role that allows
    ``action`` (404 for a non-member, 403 for a member without the role)."""

    def dependency(project: ProjectRef, session: SessionDep, caller: CallerDep) -> Access:
        proj = get_project(session, project)
        role = authorize(session, caller.user, proj, action)
        return Access(caller.user, proj, role)

    dependency.action = action  # type: ignore[attr-defined]  # read by the role-matrix test
    return Depends(dependency)


def require_global(action: Action):  # noqa: ANN201 - a FastAPI dependency
    def dependency(caller: CallerDep) -> User:
        authorize_global(caller.user, action)
        return caller.user

    dependency.global_action = action  # type: ignore[attr-defined]
    return Depends(dependency)


ReadProject = Annotated[Access, require(Action.READ_PROJECT)]
Annotate = Annotated[Access, require(Action.ANNOTATE)]
ReadQuality = Annotated[Access, require(Action.READ_QUALITY)]
Review = Annotated[Access, require(Action.REVIEW)]
ManageData = Annotated[Access, require(Action.MANAGE_DATA)]
ReadAudit = Annotated[Access, require(Action.READ_AUDIT)]
AdminProject = Annotated[Access, require(Action.ADMIN)]
Admin = Annotated[User, require_global(Action.ADMIN)]
