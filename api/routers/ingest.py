from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from labelloop.access import audit
from labelloop.api.deps import ManageData, SessionDep, SettingsDep
from labelloop.api.routers.jobs import accepted
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import EmbedRequest, IngestReportOut, JobOut
from labelloop.api.uploads import keep_upload, saved_upload
from labelloop.core.enums import AuditAction, JobKind
from labelloop.ingest.service import ingest_file
from labelloop.jobs.service import submit_job
from labelloop.prelabel.service import check_encoder

router = APIRouter(route_class=UnitOfWorkRoute,
                   prefix="/projects/{project}", tags=["ingest and pre-label"])
FieldName = Annotated[str, Query(min_length=1, max_length=200)]


@router.post("/ingest", response_model=None, responses={
    200: {"model": IngestReportOut, "description": "The file was ingested"},
    202: {"model": JobOut, "description": "A large file (or background=true): an ingest "
                                          "job reads it; follow it at the Location given"}})
def ingest(access: ManageData, session: SessionDep, settings: SettingsDep, response: Response,
           file: Annotated[UploadFile, File(description="JSONL, CSV or Parquet")],
           text_field: FieldName = "text",
           label_field: Annotated[str | None, Query(min_length=1, max_length=200)] = "label",
           id_field: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
           split: Annotated[str, Query(pattern="^(pool|eval)$")] = "pool",
           licence: Annotated[str | None, Query(max_length=200)] = None,
           background: Annotated[bool | None, Query(
               description="Ingest as a job (202); default: only files larger than "
                           "ingest_inline_max_bytes")] = None,
           ) -> IngestReportOut | JobOut:
    """Upload a file of items. Bad rows are listed with row number and reason; good rows go
    in; identical content is stored once. A file with no usable row is refused whole. A
    large file is ingested by a job, in committed chunks, with progress."""
    with saved_upload(file, settings.max_upload_bytes) as path:
        large = path.stat().st_size > settings.ingest_inline_max_bytes
        if background or (background is None and large):
            kept = keep_upload(path, settings.uploads_dir)
            job = submit_job(session, settings, JobKind.INGEST, by=access.user.name,
                             project=access.project, params={
                                 "path": str(kept), "source": f"upload:{file.filename}",
                                 "text_field": text_field, "label_field": label_field,
                                 "id_field": id_field, "split": split, "licence": licence,
                                 "delete_after": True})
            audit.record(session, access.user.name, AuditAction.INGEST,
                         project_id=access.project.id, target=f"job {job.id}", split=split)
            response.status_code = status.HTTP_202_ACCEPTED
            return accepted(response, job)
        report = ingest_file(session, access.project, path, text_field=text_field,
                             label_field=label_field, id_field=id_field, split=split,
                             licence=licence, source_name=f"upload:{file.filename}",
                             max_chars=settings.max_text_chars)
    audit.record(session, access.user.name, AuditAction.INGEST, project_id=access.project.id,
                 target=f"ingest batch {report.ingest_batch_id}", split=split,
                 n_accepted=report.n_accepted, n_rejected=report.n_rejected)
    return IngestReportOut(**report.to_dict())


@router.post("/prelabel", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def prelabel(access: ManageData, session: SessionDep, settings: SettingsDep,
             response: Response) -> JobOut:
    """Start a pre-labeling job: embed (cached) and predict every pool item the active model
    has not seen yet, in committed chunks. Follow it at the Location given
    (``GET /projects/{project}/jobs/{id}``)."""
    job = submit_job(session, settings, JobKind.PRELABEL, by=access.user.name,
                     project=access.project)
    audit.record(session, access.user.name, AuditAction.PRELABEL, project_id=access.project.id,
                 target=f"job {job.id}")
    return accepted(response, job)


@router.post("/embeddings", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def embed(body: EmbedRequest, access: ManageData, session: SessionDep, settings: SettingsDep,
          response: Response) -> JobOut:
    """Start an embedding job: the project's items get vectors from ``encoder`` (the
    packaged MiniLM or a model folder on the server; default: the configured encoder), in
    committed chunks, cached for when the project switches to it."""
    if body.encoder is not None:
        check_encoder(body.encoder)  # a bad name is a 422 now, not a failed job later
    job = submit_job(session, settings, JobKind.EMBED, by=access.user.name,
                     project=access.project, params=body.model_dump(exclude_none=True))
    audit.record(session, access.user.name, AuditAction.PRELABEL, project_id=access.project.id,
                 target=f"job {job.id}", kind="embed")
    return accepted(response, job)
