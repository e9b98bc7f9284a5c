"""Request-scoped dependencies: settings, the unit of work, who is asking and what they may do.

The unit of work commits *before* the response is sent (``api.routing.UnitOfWorkRoute``):
a 2xx means the change is on disk. Callers prove who they are with ``Authorization: Bearer``; a
browser page may instead carry the signed session cookie set at login, and then every
unsafe request must echo the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from labelloop.access import audit
from labelloop.access.policy import Action, authorize, authorize_global
from labelloop.access.users import authenticate, login
from labelloop.core.enums import AuditAction, Role
from labelloop.core.errors import AuthenticationError, PermissionDeniedError
from labelloop.core.settings import Settings
from labelloop.store.db import open_session, session_factory
from labelloop.store.models import ApiToken, Project, User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID = 2**63 - 1  # the largest id a database integer column holds
bearer = HTTPBearer(auto_error=False, description="An API token: ll_<id>_<secret>")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


# Roll-backs and closing get worker threads of their own: were they to queue for the
# request threads, a request holding SQLite's write lock could wait for a thread that
# requests blocked on that lock are holding (see ``api.routing``).
_finish = anyio.CapacityLimiter(1000)


async def get_session(request: Request, settings: SettingsDep) -> AsyncIterator[Session]:
    """One unit of work per request, committed by the route before the response goes out
    (``api.routing.UnitOfWorkRoute``). GET and HEAD only read (so they never wait on
    SQLite's write lock); they cannot write."""
    read_only = request.method in SAFE_METHODS
    session = session_factory(settings.db_url, read_only=read_only)()
    try:
        yield session
        if not read_only and session.in_transaction():  # an async handler's work
            await anyio.to_thread.run_sync(session.commit, limiter=_finish)
    except BaseException:
        await anyio.to_thread.run_sync(session.rollback, limiter=_finish)
        raise
    finally:
        await anyio.to_thread.run_sync(session.close, limiter=_finish)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass
class Caller:
    user: User
    token: ApiToken


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _caller(session: Session, request: Request, credentials: HTTPAuthorizationCredentials | None,
            ) -> Caller:
    cookie = request.scope.get("session") or {}
    plain = credentials.credentials if credentials is not None else (
        cookie.get("token") if isinstance(cookie, dict) else None)
    if not plain:
        raise AuthenticationError("sign in: send Authorization: Bearer <token>",
                                  where="Authorization")
    user, token = authenticate(session, plain)
    if credentials is None and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, str(cookie.get("csrf", ""))):
            raise PermissionDeniedError("missing or wrong X-CSRF-Token for a cookie session",
                                        where="X-CSRF-Token")
    return Caller(user, token)


def get_caller(request: Request, settings: SettingsDep, credentials: Credentials) -> Caller:
    """The authenticated caller: a bearer token, else the login cookie (with CSRF check).

    Checked in a read-only unit of work of its own: a first check of a token runs Argon2,
    which must not hold SQLite's write lock while it does."""
    with open_session(settings.db_url, read_only=True) as session:
        return _caller(session, request, credentials)


CallerDep = Annotated[Caller, Depends(get_caller)]


def start_cookie_session(request: Request, session: Session, name: str, password: str,
                         ) -> tuple[User, ApiToken, str, str]:
    """Sign in with a name and password: a new token, kept in the signed session cookie with
    a fresh CSRF token (the API's /auth/login and the sign-in page both come here).
    Returns the user, the token, its text and the CSRF token."""
    user, token, plain = login(session, name, password)
    csrf = secrets.token_urlsafe(24)
    request.session.clear()
    request.session.update({"token": plain, "csrf": csrf})
    audit.record(session, user.name, AuditAction.TOKEN, target=f"token {token.id}",
                 event="login")
    return user, token, plain, csrf


ProjectRef = Annotated[str, Path(min_length=1, max_length=200,
                                 description="The project's name or id")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class Access:
    """A caller allowed to act in a project, and their role there. ``project`` is loaded
    in the request's unit of work when the handler first reads it."""

    def __init__(self, user: User, project_id: int, role: Role, session: Session) -> None:
        self.user, self.project_id, self.role = user, project_id, role
        self.session = session  # the request's unit of work
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        # Not functools.cached_property: on Python 3.11 it holds one lock for every
        # instance while loading, and this load may wait on SQLite's write lock.
        if self._project is None:
            self._project = self.session.get(Project, self.project_id)
            assert self._project is not None  # seen a moment ago; never deleted
        return self._project


def require(action: Action):  # noqa: ANN201 - a FastAPI dependency
    """A dependency: the caller, the project named in the path, and a role that allows
    ``action`` (404 for a non-member, 403 for a member without the role).

    The caller and the check are read in one unit of work of their own. Dependencies run
    in other worker threads than the handler; were this one to take SQLite's write lock,
    a request could hold it while waiting for a free thread that requests waiting on the
    lock hold."""

    def dependency(project: ProjectRef, request: Request, settings: SettingsDep,
                   credentials: Credentials, session: SessionDep) -> Access:
        with open_session(settings.db_url, read_only=True) as check:  # who, then may they
            caller = _caller(check, request, credentials)
            proj, role = authorize(check, caller.user, project, action)
        return Access(caller.user, proj.id, role, session)

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
