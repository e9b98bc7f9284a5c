from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status

from labelloop.access.projects import get_project
from labelloop.api.deps import SessionDep, SettingsDep
from labelloop.api.schemas import (
    AnnotatorScorecardOut,
    AnnotatorStatusOut,
    DriftOut,
    IngestReportOut,
    LabelErrorsOut,
    LabelErrorsRequest,
    ProjectQualityOut,
    ReinstateRequest,
    RereviewOut,
    RereviewRequest,
)
from labelloop.api.uploads import saved_upload
from labelloop.quality.annotators import reinstate_annotator
from labelloop.quality.gold_items import ingest_gold
from labelloop.quality.reports import annotator_scorecards, drift_findings, project_report
from labelloop.quality.review import send_for_rereview, suspect_label_errors

router = APIRouter(prefix="/projects/{project}", tags=["quality"])


@router.get("/quality", response_model=ProjectQualityOut)
def quality_report(project: str, session: SessionDep) -> ProjectQualityOut:
    """Gate bars, every batch's figures and gate decision, labels held back, gold accuracy
    and figures per guideline version, flagged annotators."""
    return ProjectQualityOut(**project_report(session, get_project(session, project)))


@router.get("/annotators", response_model=list[AnnotatorScorecardOut])
def scorecards(project: str, session: SessionDep) -> list[AnnotatorScorecardOut]:
    """Per annotator: standing, agreement with consensus, gold accuracy (Wilson 95%) and
    confusion, open tasks, and the same per guideline version."""
    cards = annotator_scorecards(session, get_project(session, project))
    return [AnnotatorScorecardOut(**c) for c in cards]


@router.post("/annotators/{annotator}/reinstate", response_model=AnnotatorStatusOut)
def reinstate(project: str, annotator: str, body: ReinstateRequest,
              session: SessionDep) -> AnnotatorStatusOut:
    """A reviewer lets an annotator flagged for recalibration work again."""
    row = reinstate_annotator(session, get_project(session, project), annotator,
                              body.reviewer, body.note)
    return AnnotatorStatusOut.model_validate(row)


@router.get("/quality/drift", response_model=DriftOut)
def drift(project: str, session: SessionDep,
          margin: Annotated[float, Query(gt=0, lt=1)] = 0.05,
          current: Annotated[int, Query(ge=1)] = 1,
          min_count: Annotated[int, Query(ge=1)] = 20) -> DriftOut:
    """Agreement and gold accuracy of the latest ``current`` batches against the batches
    before; a fall beyond ``margin`` names its likely causes."""
    return DriftOut(**drift_findings(session, get_project(session, project), margin,
                                     current=current, min_count=min_count))


@router.post("/quality/label-errors", response_model=LabelErrorsOut)
def label_errors(project: str, body: LabelErrorsRequest, session: SessionDep,
                 settings: SettingsDep) -> LabelErrorsOut:
    """Suspected label errors by confident learning, most doubtful first; optionally sent
    back as a re-review batch."""
    report = suspect_label_errors(session, get_project(session, project), settings,
                                  body.top, rereview=body.send_for_rereview)
    return LabelErrorsOut(**report)


@router.post("/quality/rereview", response_model=RereviewOut,
             status_code=status.HTTP_201_CREATED)
def rereview(project: str, body: RereviewRequest, session: SessionDep) -> RereviewOut:
    """Ask people again about labeled items (or every item of a batch)."""
    batch = send_for_rereview(session, get_project(session, project), body.item_ids,
                              batch_id=body.batch_id, required=body.required)
    return RereviewOut(batch_id=batch.id, strategy=batch.strategy, status=batch.status,
                       n_tasks=len(batch.tasks))


@router.post("/gold", response_model=IngestReportOut)
def gold(project: str, session: SessionDep, settings: SettingsDep,
         file: Annotated[UploadFile, File(description="JSONL, CSV or Parquet with labels")],
         text_field: Annotated[str, Query()] = "text",
         label_field: Annotated[str, Query()] = "label",
         licence: Annotated[str | None, Query()] = None) -> IngestReportOut:
    """Upload expert-labeled gold items; they are mixed into annotators' tasks unannounced.
    Every row needs a label."""
    with saved_upload(file) as path:
        report = ingest_gold(session, get_project(session, project), settings, path,
                             text_field=text_field, label_field=label_field, licence=licence,
                             source_name=f"upload:{file.filename}")
    return IngestReportOut(**report.to_dict())
