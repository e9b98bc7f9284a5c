"""Who may do what, in one table: every route, page and CLI command asks here.

Roles are per project (``Membership``); a user whose global role is admin holds admin in
every project. A user who is not a member of a project is told it does not exist (404), so
another team's project names do not leak; a member whose role does not allow an action
gets 403.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from labelloop.access.projects import project_named
from labelloop.core.enums import Role
from labelloop.core.errors import NotFoundError, PermissionDeniedError
from labelloop.core.names import shorten
from labelloop.store.models import Membership, Project, User


class Action(StrEnum):
    READ_PROJECT = "read-project"  # the project's label schema, guideline and settings
    ANNOTATE = "annotate"  # fetch one's own tasks, answer them
    READ_QUALITY = "read-quality"  # batch QA, scorecards, drift, versions and models
    REVIEW = "review"  # adjudicate, resolve gates, reinstate, send for re-review
    MANAGE_DATA = "manage-data"  # ingest, pre-label, next batch, freeze, train, export
    READ_AUDIT = "read-audit"
    ADMIN = "admin"  # users, memberships, project settings


_ALL = frozenset(Role)
ALLOWED: dict[Action, frozenset[Role]] = {
    Action.READ_PROJECT: _ALL,
    Action.ANNOTATE: _ALL,
    Action.READ_QUALITY: frozenset({Role.REVIEWER, Role.ML_TEAM, Role.ADMIN}),
    Action.REVIEW: frozenset({Role.REVIEWER, Role.ADMIN}),
    Action.MANAGE_DATA: frozenset({Role.ML_TEAM, Role.ADMIN}),
    Action.READ_AUDIT: frozenset({Role.ML_TEAM, Role.ADMIN}),
    Action.ADMIN: frozenset({Role.ADMIN}),
}


def _a(role: Role) -> str:
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def authorize(session: Session, user: User, ref: int | str, action: Action,
                 ) -> tuple[Project, Role]:
    """The project ``ref`` (id or name) names and the user's role there, if it allows
    ``action``; else 404 for a non-member, 403 for a member. One query: every request asks."""
    found = session.execute(
        select(Project, Membership.role).where(project_named(ref))
        .outerjoin(Membership, and_(Membership.project_id == Project.id,
                                    Membership.user_id == user.id))).first()
    if found is None:
        raise NotFoundError(f"no project {shorten(ref)!r}", where="project")
    project, member_role = found
    role = Role.ADMIN if user.role == Role.ADMIN else member_role
    return project, _allowed(role, project.name, action)


def _allowed(role: Role | None, project_name: str, action: Action) -> Role:
    if role is None:
        raise NotFoundError(f"no project {shorten(project_name)!r}", where="project")
    if role not in ALLOWED[action]:
        raise PermissionDeniedError(f"{_a(role)} may not {action.value} in project "
                                    f"{shorten(project_name)!r}", where="project")
    return role


def authorize_global(user: User, action: Action) -> None:
    """Actions outside any project (creating projects, managing users) need a global role."""
    if user.role not in ALLOWED[action]:
        raise PermissionDeniedError(f"{_a(user.role)} may not {action.value}",
                                    where="user")
