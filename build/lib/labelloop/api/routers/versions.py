import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse

from labelloop.access.projects import get_project
from labelloop.api.deps import SessionDep, SettingsDep
from labelloop.api.schemas import FreezeRequest, ModelOut, TrainRequest, VersionOut
from labelloop.store.models import DatasetVersion, ModelVersion
from labelloop.training.service import train_model
from labelloop.versions.service import export_version, freeze_version, get_version

router = APIRouter(prefix="/projects/{project}", tags=["versions and training"])


@router.post("/versions", response_model=VersionOut, status_code=status.HTTP_201_CREATED)
def freeze(project: str, body: FreezeRequest, session: SessionDep) -> VersionOut:
    """Freeze accepted labels (gated batches only) into an immutable, digested version."""
    version = freeze_version(session, get_project(session, project), split=body.split,
                             name=body.name)
    return VersionOut.model_validate(version)


@router.get("/versions", response_model=list[VersionOut])
def list_versions(project: str, session: SessionDep) -> list[VersionOut]:
    proj = get_project(session, project)
    rows = session.query(DatasetVersion).filter_by(project_id=proj.id).order_by(DatasetVersion.id)
    return [VersionOut.model_validate(v) for v in rows]


@router.get("/versions/{version}/export", response_class=FileResponse)
def export(project: str, version: str, session: SessionDep,
           fmt: Annotated[str, Query(alias="format", pattern="^(jsonl|parquet)$")] = "jsonl",
           ) -> FileResponse:
    """Download a version as JSONL or Parquet (each row with its lineage)."""
    proj = get_project(session, project)
    v = get_version(session, proj, version)
    out = Path(tempfile.mkdtemp()) / f"{proj.name}-{v.name}.{fmt}"
    export_version(session, v, fmt, out)
    return FileResponse(out, filename=out.name)


@router.post("/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def train(project: str, body: TrainRequest, session: SessionDep,
          settings: SettingsDep) -> ModelOut:
    """Retrain on a version, evaluate, log to MLflow (inputs name the versions' digests)."""
    proj = get_project(session, project)
    model = train_model(session, proj, settings,
                        train=get_version(session, proj, body.train_version),
                        evaluation=(get_version(session, proj, body.eval_version)
                                    if body.eval_version is not None else None), c=body.c)
    return ModelOut.model_validate(model)


@router.get("/models", response_model=list[ModelOut])
def list_models(project: str, session: SessionDep) -> list[ModelOut]:
    proj = get_project(session, project)
    rows = session.query(ModelVersion).filter_by(project_id=proj.id).order_by(ModelVersion.id)
    return [ModelOut.model_validate(m) for m in rows]
