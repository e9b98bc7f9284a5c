"""Browse items and tasks: keyset pages with exact counts (``ingest.browse``,
``annotate.browse``)."""

from typing import Annotated

from fastapi import APIRouter, Query

from labelloop.annotate.browse import browse_tasks
from labelloop.api.deps import ReadQuality, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import ItemPageOut, TaskPageOut
from labelloop.ingest.browse import browse_items
from labelloop.store.pages import MAX_PAGE

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}", tags=["browse"])
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows in this page")]
After = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="The next_after of the "
                                    "previous page")]
Id = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Name = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("/items", response_model=ItemPageOut)
def list_items(access: ReadQuality, session: SessionDep,
               split: Annotated[str | None, Query(pattern="^(pool|eval|gold)$")] = None,
               ingest_batch_id: Id = None, given_label: Name = None, limit: PageLimit = 50,
               after: After = None) -> ItemPageOut:
    """The project's items by id, a page at a time, with the count of all that match."""
    page = browse_items(session, access.project, split=split, ingest_batch_id=ingest_batch_id,
                        given_label=given_label, limit=limit, after=after)
    return ItemPageOut(**page.to_dict())


@router.get("/tasks/all", response_model=TaskPageOut)
def list_tasks(access: ReadQuality, session: SessionDep,
               status: Annotated[str | None, Query(pattern="^(open|done)$")] = None,
               reason: Name = None, batch_id: Id = None, prelabel: Name = None,
               limit: PageLimit = 50, after: After = None) -> TaskPageOut:
    """Every task of the project (not only yours) by id, a page at a time, with the count
    of all that match: by status, routing reason, batch or pre-label."""
    page = browse_tasks(session, access.project, status=status, reason=reason,
                        batch_id=batch_id, prelabel=prelabel, limit=limit, after=after)
    return TaskPageOut(**page.to_dict())
