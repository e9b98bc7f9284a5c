from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from labelloop.access.projects import get_project
from labelloop.api.deps import SessionDep, SettingsDep
from labelloop.api.schemas import IngestReportOut, PrelabelOut
from labelloop.api.uploads import saved_upload
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.service import prelabel_project

router = APIRouter(prefix="/projects/{project}", tags=["ingest and pre-label"])


@router.post("/ingest", response_model=IngestReportOut)
def ingest(project: str, session: SessionDep, settings: SettingsDep,
           file: Annotated[UploadFile, File(description="JSONL, CSV or Parquet")],
           text_field: Annotated[str, Query()] = "text",
           label_field: Annotated[str | None, Query()] = "label",
           split: Annotated[str, Query(pattern="^(pool|eval)$")] = "pool",
           licence: Annotated[str | None, Query()] = None) -> IngestReportOut:
    """Upload a file of items. Bad rows are listed with row number and reason; good rows go
    in; identical content is stored once."""
    proj = get_project(session, project)
    with saved_upload(file) as path:
        report = ingest_file(session, proj, path, text_field=text_field,
                             label_field=label_field, split=split, licence=licence,
                             source_name=f"upload:{file.filename}",
                             max_chars=settings.max_text_chars)
    return IngestReportOut(**report.to_dict())


@router.post("/prelabel", response_model=PrelabelOut)
def prelabel(project: str, session: SessionDep, settings: SettingsDep) -> PrelabelOut:
    """Embed (cached) and predict every pool item the active model has not seen yet."""
    report = prelabel_project(session, get_project(session, project), settings)
    return PrelabelOut(**report.to_dict())
