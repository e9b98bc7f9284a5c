"""Remediation targets: evaluation findings turned into work on the data
(``remediate.service``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from labelloop.access import audit
from labelloop.api.deps import ManageData, ReadQuality, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.core.enums import AuditAction
from labelloop.remediate.service import (
    get_target,
    list_targets,
    rereview_target,
    target_dict,
    update_target,
)
from labelloop.store.models import Task

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}",
                   tags=["remediation"])
TargetId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class TargetPatch(BaseModel):
    """What an ml-team member may change on a target (all optional)."""

    owner: str | None = Field(default=None, min_length=1, max_length=200,
                              description="A user's name: who carries the target")
    action: str | None = Field(default=None, pattern="^(boost|re-review|guideline)$")
    boost: float | None = Field(default=None, ge=1, le=100,
                                description="Weight of the target's classes in selection")
    dismiss: bool = Field(default=False, description="Close it as no fault of the data")
    note: str | None = Field(default=None, max_length=10_000)


class RereviewRequest(BaseModel):
    required: int | None = Field(default=None, ge=1, le=10,
                                 description="Answers per item (default: the overlap)")


@router.get("/targets")
def targets(access: ReadQuality, session: SessionDep,
            status: Annotated[str | None, Query(
                pattern="^(open|acting|addressed|closed|dismissed)$")] = None,
            kind: Annotated[str | None, Query(
                pattern="^(f1-drop|confusion|slice|label-errors)$")] = None,
            ) -> list[dict[str, Any]]:
    """The project's remediation targets, oldest first: each evaluation finding with its
    owner, action (boost, re-review, guideline), status (open, acting, addressed, closed,
    dismissed), what lies behind it and, once closed, the evaluation-to-remediation time."""
    return [target_dict(t) for t in list_targets(session, access.project, status=status,
                                                 kind=kind)]


@router.get("/targets/{target_id}")
def target(target_id: TargetId, access: ReadQuality, session: SessionDep) -> dict[str, Any]:
    """One target, with the items it names."""
    t = get_target(session, access.project, target_id)
    return {**target_dict(t), "item_ids": t.evidence.get("item_ids", []),
            "evidence": {k: v for k, v in t.evidence.items() if k != "item_ids"}}


@router.patch("/targets/{target_id}")
def change_target(target_id: TargetId, body: TargetPatch, access: ManageData,
                  session: SessionDep) -> dict[str, Any]:
    """Reassign a target, change its action or boost, or dismiss it (ml-team)."""
    t = update_target(session, access.project, get_target(session, access.project, target_id),
                      **body.model_dump())
    audit.record(session, access.user.name, AuditAction.TARGET, project_id=access.project.id,
                 target=str(t.id), changes={k: v for k, v in body.model_dump().items()
                                            if v not in (None, False)})
    return target_dict(t)


@router.post("/targets/{target_id}/rereview", status_code=201)
def rereview(target_id: TargetId, access: ManageData, session: SessionDep,
             body: Annotated[RereviewRequest | None, Body()] = None) -> dict[str, Any]:
    """Carry out a re-review target: a re-review batch of its items (ml-team). The answers
    replace the items' labels once the batch passes its gate."""
    t = get_target(session, access.project, target_id)
    batch = rereview_target(session, access.project, t,
                            required=body.required if body else None)
    audit.record(session, access.user.name, AuditAction.REREVIEW,
                 project_id=access.project.id, target=str(t.id), batch_id=batch.id)
    n_tasks = session.scalar(select(func.count(Task.id)).where(Task.batch_id == batch.id))
    return {**target_dict(t), "n_tasks": n_tasks}
