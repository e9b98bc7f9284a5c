import tempfile
from collections.abc import Iterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from labelloop.access import audit
from labelloop.api.deps import ManageData, ReadQuality, SessionDep, SettingsDep
from labelloop.api.routers.jobs import accepted
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import FreezeRequest, JobOut, ModelOut, TrainRequest, VersionOut
from labelloop.core.enums import AuditAction, JobKind
from labelloop.core.names import file_slug
from labelloop.jobs.service import submit_job
from labelloop.store.db import open_session
from labelloop.store.models import DatasetVersion, ModelVersion
from labelloop.training.service import promote_model, training_rows
from labelloop.versions.lineage import get_model
from labelloop.versions.service import freeze_version, get_version, write_version

router = APIRouter(route_class=UnitOfWorkRoute,
                   prefix="/projects/{project}", tags=["versions and training"])
VersionPath = Annotated[str, Path(min_length=1, max_length=200)]
MEDIA = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet",
         "csv": "text/csv"}
CHUNK = 1 << 16


@router.post("/versions", response_model=VersionOut, status_code=status.HTTP_201_CREATED)
def freeze(body: FreezeRequest, access: ManageData, session: SessionDep) -> VersionOut:
    """Freeze accepted labels (gated batches only) into an immutable, digested version."""
    version = freeze_version(session, access.project, split=body.split, name=body.name)
    audit.record(session, access.user.name, AuditAction.FREEZE, project_id=access.project.id,
                 target=f"version {version.id}", name=version.name, digest=version.digest)
    return VersionOut.model_validate(version)


@router.get("/versions", response_model=list[VersionOut])
def list_versions(access: ReadQuality, session: SessionDep) -> list[VersionOut]:
    rows = session.scalars(select(DatasetVersion).where(
        DatasetVersion.project_id == access.project.id).order_by(DatasetVersion.id))
    return [VersionOut.model_validate(v) for v in rows]


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()  # an anonymous temporary file: gone once closed


@router.get("/versions/{version}/export", response_class=StreamingResponse,
            responses={200: {"content": {m: {} for m in MEDIA.values()}}})
def export(version: VersionPath, access: ManageData, session: SessionDep,
           settings: SettingsDep,
           fmt: Annotated[str, Query(alias="format", pattern="^(jsonl|parquet|csv)$")] = "jsonl",
           ) -> StreamingResponse:
    """Download a version as JSONL, Parquet or CSV (each row with its lineage), streamed.
    The file is written, with flat memory, before the response starts, in a nameless
    temporary file."""
    v = get_version(session, access.project, version)
    fh = tempfile.TemporaryFile()
    write_version(session, v, fmt, fh)
    fh.seek(0)
    with open_session(settings.db_url) as log:  # a GET reads only: the record has its own
        audit.record(log, access.user.name, AuditAction.EXPORT,
                     project_id=access.project.id, target=f"version {v.id}", format=fmt)
    slug = file_slug(f"{access.project.name}-{v.name}")
    return StreamingResponse(_chunks(fh), media_type=MEDIA[fmt], headers={
        "Content-Disposition": f'attachment; filename="{slug}.{fmt}"'})


@router.post("/versions/{version}/exports", response_model=JobOut,
             status_code=status.HTTP_202_ACCEPTED)
def start_export(version: VersionPath, access: ManageData, session: SessionDep,
                 settings: SettingsDep, response: Response,
                 fmt: Annotated[str, Query(alias="format", pattern="^(jsonl|parquet|csv)$")]
                 = "parquet") -> JobOut:
    """Start an export job: the version is written to a file on the server (streamed, with
    progress), then downloaded from ``GET /projects/{project}/jobs/{id}/download``. For
    large versions, where the streamed GET would first make you wait for the whole file."""
    v = get_version(session, access.project, version)
    job = submit_job(session, settings, JobKind.EXPORT, by=access.user.name,
                     project=access.project, params={"version_id": v.id, "format": fmt})
    audit.record(session, access.user.name, AuditAction.EXPORT, project_id=access.project.id,
                 target=f"version {v.id}", format=fmt, job=job.id)
    return accepted(response, job)


@router.post("/models", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def train(body: TrainRequest, access: ManageData, session: SessionDep,
          settings: SettingsDep, response: Response) -> JobOut:
    """Start a training job: retrain on a version, evaluate, log to MLflow (inputs name the
    versions' digests), register; the model becomes the pre-labeler. The pair of versions is
    checked first (422 here, not a failed job). Follow the job at the Location given; its
    result names the model."""
    proj = access.project
    train_version = get_version(session, proj, body.train_version)
    eval_version = (get_version(session, proj, body.eval_version)
                    if body.eval_version is not None else None)
    training_rows(session, proj, settings, train_version, eval_version)
    job = submit_job(session, settings, JobKind.TRAIN, by=access.user.name, project=proj,
                     params={"train_version": train_version.id,
                             "eval_version": eval_version.id if eval_version else None,
                             "c": body.c, "promote": body.promote})
    audit.record(session, access.user.name, AuditAction.TRAIN, project_id=proj.id,
                 target=f"job {job.id}", train_version=str(body.train_version),
                 eval_version=str(body.eval_version))
    return accepted(response, job)


@router.post("/models/{model_id}/promote", response_model=ModelOut)
def promote(model_id: Annotated[int, Path(ge=1, le=2**63 - 1)], access: ManageData,
            session: SessionDep, settings: SettingsDep) -> ModelOut:
    """Make a model trained earlier (a candidate) the project's pre-labeler; the registry
    alias ``prelabeler`` moves to it (ml-team)."""
    model = promote_model(session, access.project,
                          get_model(session, access.project, model_id), settings)
    audit.record(session, access.user.name, AuditAction.TRAIN, project_id=access.project.id,
                 target=f"model {model.id}", promoted=True)
    return ModelOut.model_validate(model)


@router.get("/models", response_model=list[ModelOut])
def list_models(access: ReadQuality, session: SessionDep) -> list[ModelOut]:
    rows = session.scalars(select(ModelVersion).where(
        ModelVersion.project_id == access.project.id).order_by(ModelVersion.id))
    return [ModelOut.model_validate(m) for m in rows]
