from fastapi import APIRouter, Response, status

from labelloop.access import audit
from labelloop.api.deps import IdPath, ManageData, ReadQuality, Review, SessionDep, SettingsDep
from labelloop.api.routers.jobs import accepted
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import (
    BatchOut,
    BatchQAOut,
    JobOut,
    NextBatchRequest,
    ResolveRequest,
)
from labelloop.core.enums import AuditAction, JobKind
from labelloop.core.errors import NotFoundError
from labelloop.jobs.service import submit_job
from labelloop.quality.service import batch_report, resolve_batch
from labelloop.selection.service import next_batch
from labelloop.selection.strategies import get_strategy
from labelloop.store.models import Batch, Project

router = APIRouter(route_class=UnitOfWorkRoute,
                   prefix="/projects/{project}/batches", tags=["select and route", "quality"])


@router.post("", response_model=BatchOut, status_code=status.HTTP_201_CREATED)
def create_next_batch(body: NextBatchRequest, access: ManageData, session: SessionDep,
                      settings: SettingsDep) -> BatchOut:
    """Route the pool, auto-accept what is safe, and pick the next items for humans. One
    at a time per project: a second request waits for the first. Items not yet pre-labeled
    are pre-labeled first, up to ``prelabel_inline_max``; past that, 409: run a pre-labeling
    job (POST /projects/{project}/prelabel) first."""
    report = next_batch(session, access.project, settings, size=body.size,
                        strategy=body.strategy, auto_accept=body.auto_accept, seed=body.seed,
                        class_boost=body.class_boost,
                        prelabel_limit=settings.prelabel_inline_max)
    audit.record(session, access.user.name, AuditAction.NEXT_BATCH,
                 project_id=access.project.id, target=f"batch {report.batch_id}",
                 strategy=body.strategy, size=body.size, n_tasks=report.n_tasks,
                 n_auto_accepted=report.n_auto_accepted)
    return BatchOut(**report.to_dict())


@router.post("/jobs", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def start_next_batch(body: NextBatchRequest, access: ManageData, session: SessionDep,
                     settings: SettingsDep, response: Response) -> JobOut:
    """Start a next-batch job: what ``POST /projects/{project}/batches`` does, with no
    limit on the items it pre-labels first (in committed chunks, with progress). The
    strategy is checked here (422, nothing queued). Follow the job at the Location given;
    its result is the batch's report."""
    get_strategy(body.strategy)  # an unknown name fails now, not as a failed job later
    job = submit_job(session, settings, JobKind.NEXT_BATCH, by=access.user.name,
                     project=access.project, params=body.model_dump())
    return accepted(response, job)


def _batch(session: SessionDep, project: Project, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None or batch.project_id != project.id:
        raise NotFoundError(f"no batch {batch_id} in this project", where="batch_id")
    return batch


@router.get("/{batch_id}", response_model=BatchQAOut)
def read_batch(batch_id: IdPath, access: ReadQuality, session: SessionDep) -> BatchQAOut:
    """The batch's status, QA figures (agreement, audit) and gate decision."""
    return BatchQAOut(**batch_report(_batch(session, access.project, batch_id)))


@router.post("/{batch_id}/resolve", response_model=BatchQAOut)
def resolve(batch_id: IdPath, body: ResolveRequest, access: Review,
            session: SessionDep) -> BatchQAOut:
    """A reviewer adjudicates a flagged batch so it may feed dataset versions."""
    batch = resolve_batch(session, _batch(session, access.project, batch_id),
                          access.user.name, body.corrections, body.note)
    audit.record(session, access.user.name, AuditAction.RESOLVE_GATE,
                 project_id=access.project.id, target=f"batch {batch_id}",
                 corrections={str(k): v for k, v in body.corrections.items()},
                 note=body.note)
    return BatchQAOut(**batch_report(batch))
