"""``labelloop targets ...``: remediation targets, the same service functions as
``GET/PATCH /projects/{p}/targets[/{id}]`` and ``POST .../targets/{id}/rereview``, on the
local database or, with --server, over HTTP. JSON out; a bad argument is a one-line error
and exit code 2."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from labelloop.access import audit
from labelloop.cli_common import Home, local_admin, print_json, remote, run_or_exit
from labelloop.cli_lineage import _local, _part
from labelloop.core.enums import AuditAction

targets_app = typer.Typer(help="Remediation targets: evaluation findings turned into work on "
                          "the data (boost, re-review, guideline change).",
                          no_args_is_help=True)


@targets_app.command("list")
def list_cmd(project: str,
             status: Annotated[str | None, typer.Option(
                 help="open, acting, addressed, closed or dismissed")] = None,
             kind: Annotated[str | None, typer.Option(
                 help="f1-drop, confusion, slice or label-errors")] = None,
             home: Home = None) -> None:
    """The project's targets, oldest first, with owner, action, status and, once closed,
    the evaluation-to-remediation time."""
    from labelloop.access.projects import get_project
    from labelloop.remediate.service import list_targets, target_dict

    if (server := remote()) is not None:
        params = {k: v for k, v in {"status": status, "kind": kind}.items() if v is not None}
        run_or_exit(lambda: print_json(server.call(
            "GET", f"/projects/{_part(project)}/targets", params=params)))
        return
    _local(home, lambda s, _: [target_dict(t) for t in list_targets(
        s, get_project(s, project), status=status, kind=kind)])


@targets_app.command("show")
def show_cmd(project: str, target_id: int, home: Home = None) -> None:
    """One target, with the items it names."""
    from labelloop.access.projects import get_project
    from labelloop.remediate.service import get_target, target_dict

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "GET", f"/projects/{_part(project)}/targets/{target_id}")))
        return

    def work(s: Any, _settings: Any) -> Any:
        t = get_target(s, get_project(s, project), target_id)
        return {**target_dict(t), "item_ids": t.evidence.get("item_ids", [])}

    _local(home, work)


@targets_app.command("update")
def update_cmd(project: str, target_id: int,
               owner: Annotated[str | None, typer.Option(help="A user's name")] = None,
               action: Annotated[str | None, typer.Option(
                   help="boost, re-review or guideline")] = None,
               boost: Annotated[float | None, typer.Option(help="In [1, 100]")] = None,
               dismiss: Annotated[bool, typer.Option(help="Close it as no fault of the "
                                                     "data")] = False,
               note: Annotated[str | None, typer.Option()] = None,
               home: Home = None) -> None:
    """Reassign a target, change its action or boost, or dismiss it."""
    from labelloop.access.projects import get_project
    from labelloop.remediate.service import get_target, target_dict, update_target

    fields = {"owner": owner, "action": action, "boost": boost, "dismiss": dismiss,
              "note": note}
    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "PATCH", f"/projects/{_part(project)}/targets/{target_id}",
            json={k: v for k, v in fields.items() if v is not None})))
        return

    def work(s: Any, _settings: Any) -> Any:
        p = get_project(s, project)
        t = update_target(s, p, get_target(s, p, target_id), **fields)  # type: ignore[arg-type]
        audit.record(s, local_admin(s), AuditAction.TARGET, project_id=p.id, target=str(t.id),
                     changes={k: v for k, v in fields.items() if v not in (None, False)})
        return target_dict(t)

    _local(home, work, write=True)


@targets_app.command("rereview")
def rereview_cmd(project: str, target_id: int,
                 required: Annotated[int | None, typer.Option(
                     help="Answers per item (default: the project's overlap)")] = None,
                 home: Home = None) -> None:
    """Carry out a re-review target: a re-review batch of its items."""
    from labelloop.access.projects import get_project
    from labelloop.remediate.service import get_target, rereview_target, target_dict

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "POST", f"/projects/{_part(project)}/targets/{target_id}/rereview",
            json={"required": required} if required else None)))
        return

    def work(s: Any, _settings: Any) -> Any:
        p = get_project(s, project)
        t = get_target(s, p, target_id)
        batch = rereview_target(s, p, t, required=required)
        audit.record(s, local_admin(s), AuditAction.REREVIEW, project_id=p.id,
                     target=str(t.id), batch_id=batch.id)
        return {**target_dict(t), "batch_id": batch.id}

    _local(home, work, write=True)
