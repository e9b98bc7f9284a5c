"""Request and response bodies (pydantic), kept apart from the ORM tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from labelloop.core.enums import AnswerStatus, AuditAction, JobKind, JobStatus, Role
from labelloop.selection.service import MAX_BATCH_SIZE


class ErrorDetail(BaseModel):
    error: str
    message: str
    where: str | None = None


class ErrorBody(BaseModel):
    detail: ErrorDetail


Label = Annotated[str, Field(min_length=1, max_length=200)]


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["banking-intents"])
    labels: list[Label] = Field(min_length=2, max_length=10_000,
                                examples=[["card_arrival", "lost_or_stolen_card"]])
    critical_labels: list[Label] = Field(default_factory=list, max_length=10_000)
    label_descriptions: dict[str, Annotated[str, Field(max_length=5000)]] = Field(
        default_factory=dict, max_length=10_000)
    guideline_text: str = Field(default="", max_length=1_000_000)
    overlap: int = Field(default=1, ge=1, le=10)
    critical_overlap: int = Field(default=2, ge=1, le=10)
    confidence_threshold: float = Field(default=0.9, ge=0, le=1)
    audit_share: float = Field(default=0.05, ge=0, le=1)
    calibration_share: float = Field(default=0.1, ge=0, le=0.5, description="Share of each "
                                     "batch drawn at random: the auto-accept calibration sample")
    target_accuracy: float = Field(default=0.98, ge=0, le=1)
    min_agreement: float = Field(default=0.6, ge=-1, le=1)
    min_kappa: float | None = Field(default=None, ge=-1, le=1)
    min_gold_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    gold_share: float = Field(default=0.1, ge=0, le=0.5)
    gold_min_accuracy: float = Field(default=0.8, ge=0, le=1)


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    task_type: str
    labels: list[str]
    critical_labels: list[str]
    guideline_version: int
    overlap: int
    critical_overlap: int
    confidence_threshold: float
    audit_share: float
    calibration_share: float
    target_accuracy: float
    min_agreement: float
    min_kappa: float | None = None
    min_gold_accuracy: float | None = None
    max_error_rate: float | None = None
    gold_share: float | None = None
    gold_min_accuracy: float | None = None
    active_model_id: int | None
    created_at: datetime


class Rejection(BaseModel):
    row: int
    field: str | None
    reason: str


class IngestReportOut(BaseModel):
    ingest_batch_id: int | None
    source: str
    n_rows: int
    n_accepted: int
    n_duplicates: int
    n_rejected: int
    rejections: list[Rejection]


class JobOut(BaseModel):
    """A job's state and progress: ``done`` of ``total`` items, committed."""

    id: int
    kind: JobKind
    status: JobStatus
    project_id: int | None
    created_by: str
    done: int
    total: int | None
    fraction: float | None = Field(description="done / total")
    rate_per_s: float | None = Field(description="Items a second in this attempt")
    eta_s: float | None = Field(description="Seconds left at that rate")
    attempts: int = Field(description="How many times a worker started it (a resume is 2+)")
    cancel_requested: bool
    last_error: str | None
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


class NextBatchRequest(BaseModel):
    size: int = Field(default=50, ge=1, le=MAX_BATCH_SIZE)
    strategy: str = Field(default="default", max_length=100)
    auto_accept: bool = True
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    class_boost: dict[str, Annotated[float, Field(ge=0, le=1000)]] | None = Field(
        default=None, max_length=10_000)


class BatchOut(BaseModel):
    batch_id: int
    strategy: str
    model_version_id: int
    n_pool: int
    n_tasks: int
    n_auto_accepted: int
    reasons: dict[str, int]
    selection_seconds: float
    class_boost: dict[str, float] = Field(
        default_factory=dict, description="The class boosts applied: the request's, else "
        "those of the project's remediation targets in force")


class SuggestionOut(BaseModel):
    """The model's pre-label for a task."""

    value: dict[str, Any] = Field(description='The suggested answer, e.g. {"label": "refund"}')
    score: float = Field(description="The model's calibrated confidence in it")
    model_version: str = Field(description="The model that made it")
    probs: dict[str, float] = Field(description="Probability of each label, by label name")


class TaskOut(BaseModel):
    task_id: int
    batch_id: int
    item_id: int
    text: str
    prelabel: str | None = Field(description="The suggested label (suggestion.value.label)")
    prelabel_confidence: float | None
    reason: str
    labels: list[str]
    guideline_version: int
    suggestion: SuggestionOut | None = Field(
        default=None, description="The pre-label with its model version and probabilities")
    answer: dict[str, Any] | None = Field(
        default=None, description="Your own answer, on a task opened again (to undo)")
    guideline_excerpt: list[str] = Field(
        default_factory=list, description="The guideline's paragraphs on the labels in play")


class SubmitRequest(BaseModel):
    label: str | None = Field(default=None, min_length=1, max_length=200,
                              description="The chosen label (absent for a skip)")
    status: AnswerStatus = Field(default=AnswerStatus.SUBMITTED, description="submitted, "
                                 "draft (kept, not counted) or skipped (with a reason)")
    skip_reason: str | None = Field(default=None, max_length=2000)
    seconds_spent: float | None = Field(default=None, ge=0, lt=1e7)
    unsure: bool = Field(default=False, description="Flag the answer as unsure: the item "
                         "goes to the reviewer queue")


class AnnotationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    task_id: int
    item_id: int
    annotator: str
    label: str | None
    value: dict[str, Any]
    status: AnswerStatus
    skip_reason: str | None
    unsure: bool = False
    accepted_prelabel: bool
    guideline_version: int
    created_at: datetime
    updated_at: datetime | None
    qa_job_id: int | None = Field(default=None, description="This answer completed its "
                                  "batch: the job running the batch's QA")


class BatchQAOut(BaseModel):
    batch_id: int
    status: str
    strategy: str
    gate_reason: str | None
    qa: dict[str, Any]


class ResolveRequest(BaseModel):
    corrections: dict[int, str] = Field(default_factory=dict, max_length=100_000,
                                        description="item id -> corrected label")
    note: str = Field(default="", max_length=5000)


class FreezeRequest(BaseModel):
    split: str = Field(default="train", pattern="^(train|eval)$")
    name: str | None = Field(default=None, max_length=200)


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    split: str
    digest: str
    n_rows: int
    label_counts: dict[str, int]
    batch_ids: list[int]
    parent_id: int | None
    created_at: datetime


VersionRef = Annotated[str, Field(min_length=1, max_length=200)] | Annotated[
    int, Field(ge=1, le=2**63 - 1)]


class TrainRequest(BaseModel):
    train_version: VersionRef
    eval_version: VersionRef | None = None
    c: float | None = Field(default=None, gt=0, le=1e6, description="The classifier's C; "
                            "null: chosen out of fold with the rest of the recipe")
    promote: bool = Field(default=True, description="Make the model the pre-labeler (registry "
                          "alias prelabeler); false: it stays the registry's candidate until "
                          "POST /projects/{p}/models/{id}/promote")


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    encoder: str
    mlflow_run_id: str | None
    registered_name: str | None
    registered_version: str | None
    train_version_id: int | None
    eval_version_id: int | None
    metrics: dict[str, Any]


class GateBars(BaseModel):
    min_alpha: float | None
    min_kappa: float | None
    min_gold_accuracy: float | None
    max_error_rate: float | None


class GroupRates(BaseModel):
    """Agreement with consensus and gold accuracy of a group of answers."""

    n_answers: int
    agreement: float | None
    n_agreement: int
    gold_accuracy: float | None
    n_gold: int


class BatchQuality(BaseModel):
    batch_id: int
    status: str
    strategy: str
    guideline_version: int
    gate_reason: str | None
    n_tasks: int | None
    n_gold_tasks: int | None
    krippendorff_alpha: float | None
    cohen_kappa: float | None
    gold_accuracy: float | None
    label_error_rate: float | None
    agreement_with_consensus: float | None


class ProjectQualityOut(BaseModel):
    project: str
    gate: GateBars
    gold_share: float
    gold_min_accuracy: float
    batches: list[BatchQuality]
    batch_status: dict[str, int]
    final_labels: dict[str, Any]
    gold: dict[str, Any]
    by_guideline_version: dict[int, GroupRates]
    annotators: dict[str, Any]


class GoldScore(BaseModel):
    n: int
    correct: int
    accuracy: float
    ci95: list[float]
    confusion: dict[str, dict[str, int]]


class AnnotatorScorecardOut(BaseModel):
    annotator: str
    status: str
    reason: str | None
    flagged_at: datetime | None
    n_answers: int
    open_tasks: int
    agreement: float | None
    n_agreement: int
    accepted_prelabel_share: float | None
    median_seconds: float | None
    gold: GoldScore | None
    by_guideline_version: dict[int, GroupRates]


class ReinstateRequest(BaseModel):
    note: str = Field(default="", max_length=5000)


class AnnotatorStatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    status: str
    reason: str | None
    flagged_at: datetime | None
    active_since: datetime | None


class DriftFindingOut(BaseModel):
    metric: str
    baseline: float
    current: float
    drop: float
    causes: list[str]
    message: str
    n_baseline: int
    n_current: int


class DriftOut(BaseModel):
    margin: float
    min_count: int
    baseline_batches: list[int]
    current_batches: list[int]
    findings: list[DriftFindingOut]
    by_batch: dict[int, GroupRates]
    by_guideline_version: dict[int, GroupRates]
    note: str | None = None


class LabelErrorsRequest(BaseModel):
    top: int = Field(default=50, ge=1, le=10_000)
    send_for_rereview: bool = False


class SuspectOut(BaseModel):
    item_id: int
    text: str
    label: str
    suggested: str
    label_probability: float
    suggested_probability: float
    origin: str
    batch_id: int | None


class LabelErrorsOut(BaseModel):
    n_items: int
    n_suspects: int
    error_rate: float
    suspects: list[SuspectOut]
    rereview_batch_id: int | None


class RereviewRequest(BaseModel):
    item_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=100_000)
    batch_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    required: int | None = Field(default=None, ge=1, le=10)


class RereviewOut(BaseModel):
    batch_id: int
    strategy: str
    status: str
    n_tasks: int


class ProjectUpdate(BaseModel):
    """Settings to change; absent fields stay as they are."""

    overlap: int | None = Field(default=None, ge=1, le=10)
    critical_overlap: int | None = Field(default=None, ge=1, le=10)
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    critical_plausibility: float | None = Field(default=None, ge=0, le=1)
    audit_share: float | None = Field(default=None, ge=0, le=1)
    calibration_share: float | None = Field(default=None, ge=0, le=0.5)
    target_accuracy: float | None = Field(default=None, ge=0, le=1)
    min_agreement: float | None = Field(default=None, ge=-1, le=1)
    min_kappa: float | None = Field(default=None, ge=-1, le=1)
    min_gold_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    gold_share: float | None = Field(default=None, ge=0, le=0.5)
    gold_min_accuracy: float | None = Field(default=None, ge=0, le=1)


class GuidelineRequest(BaseModel):
    text: str = Field(max_length=1_000_000)
    note: str = Field(default="", max_length=10_000, description="What changed and why")
    labels: list[str] = Field(default_factory=list, max_length=10_000,
                              description="The labels the change affects")


class GuidelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    text: str
    note: str
    labels: list[str]
    created_by: str
    created_at: datetime


class LoginRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime


class LoginOut(BaseModel):
    user: UserOut
    token: str = Field(description="A bearer token; also set as the session cookie")
    token_id: int
    csrf_token: str = Field(description="Send as X-CSRF-Token on unsafe requests that rely "
                            "on the session cookie")


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.ANNOTATOR
    password: str | None = Field(default=None, min_length=8, max_length=1000)


class TokenCreate(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=200)


class TokenOut(BaseModel):
    id: int
    user: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    token: str | None = Field(default=None, description="Shown once, at creation")


class MemberIn(BaseModel):
    user: str = Field(min_length=1, max_length=200)
    role: Role


class MemberOut(BaseModel):
    user: str
    role: Role


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: AuditAction
    project_id: int | None
    target: str
    detail: dict[str, Any]


class ItemRowOut(BaseModel):
    item_id: int
    text: str
    split: str
    source: str
    source_row: int
    external_id: str | None
    ingest_batch_id: int
    given_label: str | None
    created_at: datetime


class ItemPageOut(BaseModel):
    count: int = Field(description="Every item the filters match")
    rows: list[ItemRowOut]
    next_after: int | None = Field(description="Pass as after= for the next page")


class TaskRowOut(BaseModel):
    task_id: int
    batch_id: int
    item_id: int
    status: str
    reason: str
    required: int
    prelabel: str | None
    prelabel_confidence: float | None


class TaskPageOut(BaseModel):
    count: int = Field(description="Every task the filters match")
    rows: list[TaskRowOut]
    next_after: int | None = Field(description="Pass as after= for the next page")


class EmbedRequest(BaseModel):
    encoder: str | None = Field(default=None, min_length=1, max_length=1000,
                                description="The packaged all-MiniLM-L6-v2, or a model folder "
                                            "on the server; default: the configured encoder")
    splits: list[Literal["pool", "gold", "eval"]] = Field(
        default=["pool", "gold", "eval"], min_length=1, max_length=3)


class LabelEventOut(BaseModel):
    event_id: int
    at: datetime
    by: str = Field(description="A user, or model:<id> for an auto-accepted label")
    reason: str
    from_label: str | None
    to_label: str | None
    origin: str | None
    batch_id: int | None
    annotators: list[str]
    agreement: float | None
    guideline_version: int
    prelabel_model_id: int | None
    note: str


class LineageRowOut(BaseModel):
    item_id: int
    text: str
    label: str
    origin: str | None
    batch_id: int | None
    guideline_version: int | None
    prelabel_model_id: int | None
    event: LabelEventOut | None = Field(description="The label event the row's label comes "
                                        "from (none when the label came with the data)")


class LineageRowPageOut(BaseModel):
    count: int = Field(description="Every row the filters match")
    rows: list[LineageRowOut]
    next_after: int | None = Field(description="Pass as after= for the next page")


class AdjudicateRequest(BaseModel):
    batch_id: int = Field(ge=1, le=2**63 - 1)
    item_id: int = Field(ge=1, le=2**63 - 1)
    label: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class AdjudicationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The label event")
    item_id: int
    batch_id: int | None
    by: str
    from_label: str | None
    to_label: str | None
    reason: str
    at: datetime
