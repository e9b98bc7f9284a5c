"""``labelloop access ...``: users, tokens and memberships, acting as the local admin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labelloop.cli_common import Home, local_admin, print_json, run_or_exit, settings_for
from labelloop.core.enums import AuditAction, Role

access_app = typer.Typer(help="Users, API tokens and project members (as the local admin, "
                         "made at first run).", no_args_is_help=True)
RoleOpt = Annotated[Role, typer.Option(help="annotator, reviewer, ml-team or admin")]


def _go(home: Path | None, work) -> None:  # noqa: ANN001
    from labelloop.store.db import open_session

    def go() -> None:
        with open_session(settings_for(home).db_url) as s:
            print_json(work(s, local_admin(s)))

    run_or_exit(go)


@access_app.command("add-user")
def add_user(name: str, role: RoleOpt = Role.ANNOTATOR,
             password: Annotated[str | None, typer.Option(help="For signing in to the web "
                                                          "pages")] = None,
             home: Home = None) -> None:
    """Create a user."""
    from labelloop.access import audit
    from labelloop.access.users import create_user

    def work(s, admin: str) -> dict:  # noqa: ANN001
        user = create_user(s, name, role, password)
        audit.record(s, admin, AuditAction.USER, target=user.name, event="create",
                     role=user.role.value)
        return {"id": user.id, "name": user.name, "role": user.role.value}

    _go(home, work)


@access_app.command("create-token")
def create_token_cmd(user: str, name: str = "cli", home: Home = None) -> None:
    """Make an API token for USER and print it (shown this once)."""
    from labelloop.access import audit
    from labelloop.access.users import create_token, get_user

    def work(s, admin: str) -> dict:  # noqa: ANN001
        token, plain = create_token(s, get_user(s, user), name)
        audit.record(s, admin, AuditAction.TOKEN, target=f"token {token.id}", event="create",
                     user=user)
        return {"token_id": token.id, "user": user, "token": plain}

    _go(home, work)


@access_app.command("revoke-token")
def revoke_token_cmd(token_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)],
                     home: Home = None) -> None:
    """Revoke a token: it stops working at once."""
    from labelloop.access import audit
    from labelloop.access.users import bootstrap_admin, revoke_token

    def work(s, admin: str) -> dict:  # noqa: ANN001
        token = revoke_token(s, token_id, by=bootstrap_admin(s))
        audit.record(s, admin, AuditAction.TOKEN, target=f"token {token.id}", event="revoke")
        return {"token_id": token.id, "revoked_at": token.revoked_at}

    _go(home, work)


@access_app.command("set-member")
def set_member(project: str, user: str, role: RoleOpt, home: Home = None) -> None:
    """Give USER a role in PROJECT (or change it)."""
    from labelloop.access import audit
    from labelloop.access.projects import get_project
    from labelloop.access.users import add_member, get_user

    def work(s, admin: str) -> dict:  # noqa: ANN001
        p = get_project(s, project)
        row = add_member(s, p, get_user(s, user), role)
        audit.record(s, admin, AuditAction.MEMBER, project_id=p.id, target=user, event="set",
                     role=row.role.value)
        return {"project": p.name, "user": user, "role": row.role.value}

    _go(home, work)


@access_app.command("audit")
def audit_log(project: Annotated[str | None, typer.Option()] = None,
              limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
              home: Home = None) -> None:
    """The audit log, newest first."""
    from labelloop.access import audit
    from labelloop.access.projects import get_project

    def work(s, _admin: str) -> list:  # noqa: ANN001
        pid = get_project(s, project).id if project else None
        return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action.value,
                 "project_id": e.project_id, "target": e.target, "detail": e.detail}
                for e in audit.read_log(s, project_id=pid, limit=limit)]

    _go(home, work)
