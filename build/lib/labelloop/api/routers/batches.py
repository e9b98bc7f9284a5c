from fastapi import APIRouter, status

from labelloop.access.projects import get_project
from labelloop.api.deps import SessionDep, SettingsDep
from labelloop.api.schemas import BatchOut, BatchQAOut, NextBatchRequest, ResolveRequest
from labelloop.core.errors import NotFoundError
from labelloop.quality.service import batch_report, resolve_batch
from labelloop.selection.service import next_batch
from labelloop.store.models import Batch

router = APIRouter(prefix="/projects/{project}/batches", tags=["select and route", "quality"])


@router.post("", response_model=BatchOut, status_code=status.HTTP_201_CREATED)
def create_next_batch(project: str, body: NextBatchRequest, session: SessionDep,
                      settings: SettingsDep) -> BatchOut:
    """Route the pool, auto-accept what is safe, and pick the next items for humans."""
    report = next_batch(session, get_project(session, project), settings, size=body.size,
                        strategy=body.strategy, auto_accept=body.auto_accept, seed=body.seed,
                        class_boost=body.class_boost)
    return BatchOut(**report.to_dict())


def _batch(session: SessionDep, project: str, batch_id: int) -> Batch:
    proj = get_project(session, project)
    batch = session.get(Batch, batch_id)
    if batch is None or batch.project_id != proj.id:
        raise NotFoundError(f"no batch {batch_id} in project {project!r}", where="batch_id")
    return batch


@router.get("/{batch_id}", response_model=BatchQAOut)
def read_batch(project: str, batch_id: int, session: SessionDep) -> BatchQAOut:
    """The batch's status, QA figures (agreement, audit) and gate decision."""
    return BatchQAOut(**batch_report(_batch(session, project, batch_id)))


@router.post("/{batch_id}/resolve", response_model=BatchQAOut)
def resolve(project: str, batch_id: int, body: ResolveRequest,
            session: SessionDep) -> BatchQAOut:
    """A reviewer adjudicates a flagged batch so it may feed dataset versions."""
    batch = resolve_batch(session, _batch(session, project, batch_id), body.reviewer,
                          body.corrections, body.note)
    return BatchQAOut(**batch_report(batch))
