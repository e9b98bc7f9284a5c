"""Jobs of a project: their state and progress while they run, and cancelling them."""

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from labelloop.access import audit
from labelloop.api.deps import IdPath, ManageData, ReadQuality, SessionDep, SettingsDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import JobOut
from labelloop.core.enums import AuditAction, JobKind, JobStatus
from labelloop.core.errors import ConflictError, NotFoundError
from labelloop.core.names import file_slug
from labelloop.jobs.service import cancel_job, describe, get_job, list_jobs
from labelloop.store.models import Job

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}/jobs",
                   tags=["jobs"])


def job_out(job: Job) -> JobOut:
    return JobOut.model_validate(describe(job))


def accepted(response: Response, job: Job) -> JobOut:
    """A 202's body, with the job's address in ``Location``."""
    response.headers["Location"] = f"/projects/{job.project_id}/jobs/{job.id}"
    return job_out(job)


@router.get("", response_model=list[JobOut])
def list_project_jobs(access: ReadQuality, session: SessionDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobOut]:
    """The project's jobs, newest first."""
    return [job_out(j) for j in list_jobs(session, access.project, limit)]


@router.get("/{job_id}", response_model=JobOut)
def read_job(job_id: IdPath, access: ReadQuality, session: SessionDep) -> JobOut:
    """A job's state and progress (done / total, rate, ETA, last error), as committed."""
    return job_out(get_job(session, job_id, access.project))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: IdPath, access: ManageData, session: SessionDep) -> JobOut:
    """Cancel a job: a queued one at once, a running one at its next chunk (what it has
    committed stays). An ended job answers 409."""
    job = cancel_job(session, get_job(session, job_id, access.project))
    audit.record(session, access.user.name, AuditAction.CANCEL_JOB,
                 project_id=access.project.id, target=f"job {job.id}")
    return job_out(job)


@router.get("/{job_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download(job_id: IdPath, access: ManageData, session: SessionDep,
             settings: SettingsDep) -> FileResponse:
    """The file an export job wrote (409 until it is done)."""
    job = get_job(session, job_id, access.project)
    if job.kind != JobKind.EXPORT:
        raise ConflictError(f"job {job_id} is a {job.kind.value} job: it has no file",
                            where="job_id")
    if job.status != JobStatus.DONE:
        raise ConflictError(f"job {job_id} is {job.status.value}: its file is not ready",
                            where="job_id")
    path = settings.export_dir / job.result["file"]
    if not path.is_file():
        raise NotFoundError(f"the file of job {job_id} is gone", where="job_id")
    version = job.result.get("version", "export")
    slug = file_slug(f"{access.project.name}-{version}")
    return FileResponse(path, filename=f"{slug}.{job.result['format']}")
