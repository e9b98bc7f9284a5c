"""The reviewer's queue and one-item adjudication."""

from typing import Annotated

from fastapi import APIRouter, Query

from labelloop.access import audit
from labelloop.api.deps import Review, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import AdjudicateRequest, AdjudicationOut
from labelloop.core.enums import AuditAction
from labelloop.quality.adjudication import ReviewQueue, adjudicate_item, review_queue

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}/review",
                   tags=["quality"])


@router.get("/queue", response_model=ReviewQueue)
def queue(access: Review, session: SessionDep,
          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> ReviewQueue:
    """Items waiting for a reviewer (held for review, disagreements, unsure answers) with
    the answers side by side, and the batches a gate holds."""
    return review_queue(session, access.project, limit)


@router.post("/adjudications", response_model=AdjudicationOut, status_code=201)
def adjudicate(body: AdjudicateRequest, access: Review, session: SessionDep) -> AdjudicationOut:
    """Decide one item's label: it lands in the label history (reason adjudication) and
    the audit log, and the item leaves the queue."""
    event = adjudicate_item(session, access.project, body.batch_id, body.item_id, body.label,
                            access.user.name, body.note)
    audit.record(session, access.user.name, AuditAction.ADJUDICATE,
                 project_id=access.project.id, target=f"item {body.item_id}",
                 batch_id=body.batch_id, label=body.label, note=body.note)
    return AdjudicationOut.model_validate(event)
