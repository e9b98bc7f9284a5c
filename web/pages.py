"""The web pages: sign-in, the annotator's workbench, the reviewer's queue, the team's
dashboard and the admin page, rendered by the FastAPI app itself (Jinja2 templates).

A page reads what it shows through the same services as the API, in a read-only unit of
work; what a person does on a page (answer, adjudicate, request a batch, add a user) goes
through the JSON API from a little plain JavaScript, with the session cookie and its CSRF
token, so one set of routes, roles and checks serves both. Who may open which page is
``access.policy``'s table, as for the API: a page a role may not open answers 403, a
project one is not a member of 404, and no session sends the browser to the sign-in page.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

import labelloop
from labelloop.access.policy import ALLOWED, Action, authorize, authorize_global
from labelloop.access.projects import get_guideline
from labelloop.access.users import authenticate
from labelloop.annotate.views import my_task
from labelloop.api.deps import ProjectRef, SettingsDep, start_cookie_session
from labelloop.core.enums import Role
from labelloop.core.errors import (
    AuthenticationError,
    LabelloopError,
    NotFoundError,
    PermissionDeniedError,
)
from labelloop.core.settings import Settings
from labelloop.quality.adjudication import review_queue
from labelloop.selection.strategies import available_strategies
from labelloop.store.db import open_session
from labelloop.store.models import Membership, Project, User
from labelloop.web.dashboard import dashboard_view, plot_view
from labelloop.web.plots import PLOTS

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


class PageRoute(APIRoute):
    """A page: labelloop's errors become an HTML page with the same words and status, and
    "sign in first" a redirect to the sign-in page that comes back here."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthenticationError:
                target = request.url.path + (f"?{request.url.query}" if request.url.query
                                             else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except LabelloopError as exc:
                return _problem(request, exc.status_code, exc.message)
            except RequestValidationError as exc:  # a bad query string: say where
                first = (exc.errors() or [{"loc": (), "msg": "invalid request"}])[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                return _problem(request, 422, f"{where}: {first.get('msg', '')}"[:300])

        return page


def _problem(request: Request, status: int, message: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "problem.html", {
        "status": status, "message": message, "user": None, "csrf": ""}, status_code=status)


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _signed_in(request: Request, settings: Settings) -> tuple[User, str]:
    """The user of the session cookie and its CSRF token (AuthenticationError without)."""
    cookie = request.scope.get("session") or {}
    plain = cookie.get("token") if isinstance(cookie, dict) else None
    if not plain:
        raise AuthenticationError("sign in first", where="session")
    with open_session(settings.db_url, read_only=True) as session:
        user, _token = authenticate(session, plain)
    return user, str(cookie.get("csrf", ""))


def _page(request: Request, template: str, user: User | None, csrf: str,
          **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {
        "user": user, "csrf": csrf, "version": labelloop.__version__, **context})


def _may(role: Role) -> dict[str, bool]:
    """Which pages and buttons a role's navigation shows."""
    return {a.value.replace("-", "_"): role in ALLOWED[a] for a in Action}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The projects the signed-in person works in, with the pages their role opens."""
    user, csrf = _signed_in(request, settings)
    with open_session(settings.db_url, read_only=True) as session:
        if user.role == Role.ADMIN:
            rows = [(p, Role.ADMIN) for p in session.scalars(select(Project)
                                                             .order_by(Project.id))]
        else:
            rows = list(session.execute(select(Project, Membership.role).join(
                Membership, Membership.project_id == Project.id)
                .where(Membership.user_id == user.id).order_by(Project.id)).tuples())
    projects = [{"name": p.name, "role": role.value, "may": _may(role),
                 "n_labels": len(p.labels)} for p, role in rows]
    return _page(request, "home.html", user, csrf, projects=projects,
                 is_admin=user.role == Role.ADMIN)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/",
               ) -> HTMLResponse:
    """The sign-in form; its CSRF token lives in the (not yet signed-in) session."""
    token = secrets.token_urlsafe(24)
    request.session["login_csrf"] = token
    return _page(request, "login.html", None, token, next=_local(next), error=None)


def _local(target: str) -> str:
    """Only a path on this server may be the page to come back to (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, settings: SettingsDep,
                 name: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)],
                 csrf: Annotated[str, Form(max_length=100)],
                 next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    expected = str(request.session.get("login_csrf", ""))
    if not expected or not hmac.compare_digest(csrf, expected):
        raise PermissionDeniedError("the sign-in form expired; load it again", where="csrf")
    try:
        with open_session(settings.db_url) as session:
            start_cookie_session(request, session, name, password)
    except AuthenticationError as exc:
        token = secrets.token_urlsafe(24)
        request.session["login_csrf"] = token
        return templates.TemplateResponse(request, "login.html", {
            "user": None, "csrf": token, "next": _local(next), "error": exc.message},
            status_code=401)
    return RedirectResponse(_local(next), status_code=303)


def _project_page(request: Request, settings: Settings, project: str, action: Action,
                  ) -> tuple[User, str, Project, Role]:
    user, csrf = _signed_in(request, settings)
    with open_session(settings.db_url, read_only=True) as session:
        proj, role = authorize(session, user, project, action)
    return user, csrf, proj, role


@router.get("/p/{project}/work", response_class=HTMLResponse)
def workbench(request: Request, project: ProjectRef, settings: SettingsDep,
              task: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> HTMLResponse:
    """The annotator's workbench: one task at a time, keyboard first (``?`` for the keys).
    ``task`` opens one of your own tasks again (to change your answer)."""
    user, csrf, proj, role = _project_page(request, settings, project, Action.ANNOTATE)
    with open_session(settings.db_url, read_only=True) as session:
        if task is not None:  # only one's own: another person's task is "not found"
            my_task(session, proj, user.name, task)
        try:
            guideline = get_guideline(session, proj)
        except NotFoundError:  # a project made before guidelines were versioned
            guideline = None
    return _page(request, "work.html", user, csrf, project=proj, role=role, may=_may(role),
                 open_task=task, guideline=guideline)


@router.get("/p/{project}/review", response_class=HTMLResponse)
def reviewer_queue(request: Request, project: ProjectRef, settings: SettingsDep,
                   ) -> HTMLResponse:
    """Items waiting for a reviewer with their answers side by side, and gated batches."""
    user, csrf, proj, role = _project_page(request, settings, project, Action.REVIEW)
    with open_session(settings.db_url, read_only=True) as session:
        queue = review_queue(session, proj, limit=100)
    return _page(request, "review.html", user, csrf, project=proj, role=role, may=_may(role),
                 queue=queue)


@router.get("/p/{project}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, project: ProjectRef, settings: SettingsDep) -> HTMLResponse:
    """The team's dashboard: batches and gates, quality over time, auto-accept and its
    audit, coverage, the learning curve, open remediation targets, jobs."""
    user, csrf, proj, role = _project_page(request, settings, project, Action.READ_QUALITY)
    with open_session(settings.db_url, read_only=True) as session:
        view = dashboard_view(session, proj, settings)
    return _page(request, "dashboard.html", user, csrf, project=proj, role=role,
                 may=_may(role), view=view, plots=PLOTS, strategies=available_strategies())


@router.get("/p/{project}/plots/{name}.png")
def plot(request: Request, project: ProjectRef, name: str, settings: SettingsDep) -> Response:
    """One of the dashboard's plots, as a PNG."""
    _user, _csrf, proj, _role = _project_page(request, settings, project, Action.READ_QUALITY)
    if name not in PLOTS:
        raise NotFoundError(f"no plot {name[:40]!r}", where="name")
    with open_session(settings.db_url, read_only=True) as session:
        view = plot_view(session, proj, settings)
    return Response(PLOTS[name].render(view), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, settings: SettingsDep) -> HTMLResponse:
    """Users and their roles, project memberships and tokens (global admins)."""
    user, csrf = _signed_in(request, settings)
    authorize_global(user, Action.ADMIN)
    with open_session(settings.db_url, read_only=True) as session:
        users = list(session.scalars(select(User).order_by(User.id)))
        projects = list(session.scalars(select(Project).order_by(Project.id)))
        members = session.execute(select(Project.name, User.name, Membership.role).join(
            Membership, Membership.project_id == Project.id).join(
            User, User.id == Membership.user_id).order_by(Project.id, User.name)).all()
    return _page(request, "admin.html", user, csrf, users=users, projects=projects,
                 members=members, roles=[r.value for r in Role])
