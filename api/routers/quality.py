from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile, status

from labelloop.access import audit
from labelloop.api.deps import ManageData, ReadQuality, Review, SessionDep, SettingsDep
from labelloop.api.routing import UnitOfWorkRoute
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
from labelloop.core.enums import AuditAction
from labelloop.quality.annotators import reinstate_annotator
from labelloop.quality.gold_items import ingest_gold
from labelloop.quality.reports import annotator_scorecards, drift_findings, project_report
from labelloop.quality.review import send_for_rereview, suspect_label_errors

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}", tags=["quality"])


@router.get("/quality", response_model=ProjectQualityOut)
def quality_report(access: ReadQuality, session: SessionDep) -> ProjectQualityOut:
    """Gate bars, every batch's figures and gate decision, labels held back, gold accuracy
    and figures per guideline version, flagged annotators."""
    return ProjectQualityOut(**project_report(session, access.project))


@router.get("/annotators", response_model=list[AnnotatorScorecardOut])
def scorecards(access: ReadQuality, session: SessionDep) -> list[AnnotatorScorecardOut]:
    """Per annotator: standing, agreement with consensus, gold accuracy (Wilson 95%) and
    confusion, open tasks, and the same per guideline version."""
    return [AnnotatorScorecardOut(**c) for c in annotator_scorecards(session, access.project)]


@router.post("/annotators/{annotator}/reinstate", response_model=AnnotatorStatusOut)
def reinstate(annotator: Annotated[str, Path(min_length=1, max_length=200)],
              body: ReinstateRequest, access: Review,
              session: SessionDep) -> AnnotatorStatusOut:
    """A reviewer lets an annotator flagged for recalibration work again."""
    row = reinstate_annotator(session, access.project, annotator, access.user.name, body.note)
    audit.record(session, access.user.name, AuditAction.REINSTATE,
                 project_id=access.project.id, target=annotator, note=body.note)
    return AnnotatorStatusOut.model_validate(row)


@router.get("/quality/drift", response_model=DriftOut)
def drift(access: ReadQuality, session: SessionDep,
          margin: Annotated[float, Query(gt=0, lt=1)] = 0.05,
          current: Annotated[int, Query(ge=1, le=10_000)] = 1,
          min_count: Annotated[int, Query(ge=1, le=1_000_000)] = 20) -> DriftOut:
    """Agreement and gold accuracy of the latest ``current`` batches against the batches
    before; a fall beyond ``margin`` names its likely causes."""
    return DriftOut(**drift_findings(session, access.project, margin, current=current,
                                     min_count=min_count))


@router.post("/quality/label-errors", response_model=LabelErrorsOut)
def label_errors(body: LabelErrorsRequest, access: Review, session: SessionDep,
                 settings: SettingsDep) -> LabelErrorsOut:
    """Suspected label errors by confident learning, most doubtful first; optionally sent
    back as a re-review batch."""
    report = suspect_label_errors(session, access.project, settings, body.top,
                                  rereview=body.send_for_rereview)
    if body.send_for_rereview:
        audit.record(session, access.user.name, AuditAction.REREVIEW,
                     project_id=access.project.id,
                     target=f"batch {report.get('rereview_batch_id')}", source="label-errors")
    return LabelErrorsOut(**report)


@router.post("/quality/rereview", response_model=RereviewOut,
             status_code=status.HTTP_201_CREATED)
def rereview(body: RereviewRequest, access: Review, session: SessionDep) -> RereviewOut:
    """Ask people again about labeled items (or every item of a batch)."""
    batch = send_for_rereview(session, access.project, body.item_ids,
                              batch_id=body.batch_id, required=body.required)
    audit.record(session, access.user.name, AuditAction.REREVIEW,
                 project_id=access.project.id, target=f"batch {batch.id}",
                 n_tasks=len(batch.tasks))
    return RereviewOut(batch_id=batch.id, strategy=batch.strategy, status=batch.status,
                       n_tasks=len(batch.tasks))


@router.post("/gold", response_model=IngestReportOut)
def gold(access: ManageData, session: SessionDep, settings: SettingsDep,
         file: Annotated[UploadFile, File(description="JSONL, CSV or Parquet with labels")],
         text_field: Annotated[str, Query(min_length=1, max_length=200)] = "text",
         label_field: Annotated[str, Query(min_length=1, max_length=200)] = "label",
         licence: Annotated[str | None, Query(max_length=200)] = None) -> IngestReportOut:
    """Upload expert-labeled gold items; they are mixed into annotators' tasks unannounced.
    Every row needs a label."""
    with saved_upload(file, settings.max_upload_bytes) as path:
        report = ingest_gold(session, access.project, settings, path, text_field=text_field,
                             label_field=label_field, licence=licence,
                             source_name=f"upload:{file.filename}")
    audit.record(session, access.user.name, AuditAction.INGEST, project_id=access.project.id,
                 target=f"ingest batch {report.ingest_batch_id}", split="gold",
                 n_accepted=report.n_accepted)
    return IngestReportOut(**report.to_dict())
