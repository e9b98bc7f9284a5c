"""SQLAlchemy 2 tables for the whole loop.

One project owns items; items get embeddings and predictions; selection makes batches of
tasks; annotators answer tasks with annotations; QA turns a batch's annotations into final
labels; a dataset version freezes final labels; a model version is trained on versions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from labelloop.core.defaults import CALIBRATION_SHARE
from labelloop.core.enums import (
    AnnotatorStatus,
    AnswerStatus,
    AssignmentStatus,
    AuditAction,
    BatchStatus,
    FindingKind,
    JobKind,
    JobStatus,
    LabelOrigin,
    LabelReason,
    Role,
    TargetAction,
    TargetStatus,
    TaskReason,
    TaskStatus,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in UTC. PostgreSQL keeps the zone; SQLite does not, so a value read back
    there is naive: it gets UTC attached, and every datetime the code sees is aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def enum_type(enum: type[Any], length: int = 20) -> Enum:
    """A closed vocabulary stored by value as a short string (no database enum type, so a
    new member needs no migration), refused on write when unknown."""
    return Enum(enum, native_enum=False, length=length, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class User(Base):
    """A person (or a service account) with a global role; ``admin`` may do anything."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[Role] = mapped_column(enum_type(Role), default=Role.ANNOTATOR)
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    """A user's role in one project: who may see it at all, and do what there."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(enum_type(Role))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A bearer token: only its hash is kept (shown once at creation); revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                          nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    """Who did what, when, on what: appended, never changed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[AuditAction] = mapped_column(enum_type(AuditAction))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True,
                                                   index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task_type: Mapped[str] = mapped_column(String(50), default="text-classification")
    labels: Mapped[list[Any]] = mapped_column(JSON)
    # The label schema: one or more questions, each {"name", "kind", "labels"}; kind is
    # single-label today, multi-label or spans later (the answer value follows the kind).
    questions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    label_descriptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    critical_labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    guideline_text: Mapped[str] = mapped_column(Text, default="")
    guideline_version: Mapped[int] = mapped_column(Integer, default=1)
    # Routing and quality knobs.
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    critical_overlap: Mapped[int] = mapped_column(Integer, default=2)
    confidence_threshold: Mapped[float] = mapped_column(Float, default=0.9)
    critical_plausibility: Mapped[float] = mapped_column(Float, default=0.2)
    audit_share: Mapped[float] = mapped_column(Float, default=0.05)
    # Share of each batch drawn uniformly from the pool: the unbiased calibration sample.
    calibration_share: Mapped[float] = mapped_column(Float, default=CALIBRATION_SHARE,
                                                     server_default=str(CALIBRATION_SHARE))
    target_accuracy: Mapped[float] = mapped_column(Float, default=0.98)
    min_agreement: Mapped[float] = mapped_column(Float, default=0.6)
    # Further gate bars (None: bar off) and the gold-item knobs.
    min_kappa: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_gold_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    gold_share: Mapped[float] = mapped_column(Float, default=0.1, server_default="0.1")
    gold_min_accuracy: Mapped[float] = mapped_column(Float, default=0.8, server_default="0.8")
    active_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", use_alter=True, name="fk_projects_active_model"),
        nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IngestBatch(Base):
    """One file or dataset brought in: its provenance and what happened to each row."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    source_digest: Mapped[str] = mapped_column(String(64))
    licence: Mapped[str | None] = mapped_column(String(200), nullable=True)
    split: Mapped[str] = mapped_column(String(20), default="pool")
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    n_accepted: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("project_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    text: Mapped[str] = mapped_column(Text)  # exactly as given (normalised only for the hash)
    media: Mapped[str | None] = mapped_column(Text, nullable=True)  # image path or URI
    content_hash: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # pool | eval | gold (an expert-labeled item mixed unannounced into annotators' tasks)
    split: Mapped[str] = mapped_column(String(20), default="pool", index=True)
    source: Mapped[str] = mapped_column(Text)
    source_row: Mapped[int] = mapped_column(Integer)
    ingest_batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"))
    licence: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A label that arrived with the row (an evaluation set, or labels imported from elsewhere).
    given_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Annotator(Base):
    """An annotator's standing in a project: ``active``, or ``flagged`` for recalibration
    (gold accuracy below the project's bar). Gold answers count from ``active_since``."""

    __tablename__ = "annotators"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[AnnotatorStatus] = mapped_column(enum_type(AnnotatorStatus),
                                                    default=AnnotatorStatus.ACTIVE)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                          nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Embedding(Base):
    """An item's vector for one encoder: computed once, never again for the same encoder."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("item_id", "encoder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    encoder: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(50))  # zero-shot | classifier
    encoder: Mapped[str] = mapped_column(String(300))
    artifact_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    registered_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    registered_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    train_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), nullable=True
    )
    eval_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), nullable=True
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("item_id", "model_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    probs: Mapped[dict[str, float]] = mapped_column(JSON)  # keyed by label name
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def vector(self, labels: list[str]) -> list[float]:
        """The probabilities in ``labels`` order (0 for a label the model did not know)."""
        return [self.probs.get(name, 0.0) for name in labels]


class PredictionBlock(Base):
    """A model's probabilities for a run of items, as two arrays: item ids (int64) and
    probabilities (float32, rows in ``item_ids`` order, columns in ``labels`` order).

    Written in the same unit of work as the items' ``predictions`` rows, so the two never
    disagree. Next-batch reads a whole pool's probabilities from a few hundred of these
    (``prelabel.arrays``) instead of parsing one JSON document per item."""

    __tablename__ = "prediction_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    labels: Mapped[list[str]] = mapped_column(JSON)
    n: Mapped[int] = mapped_column(Integer)
    item_ids: Mapped[bytes] = mapped_column(LargeBinary)  # int64 (n,)
    probs: Mapped[bytes] = mapped_column(LargeBinary)  # float32 (n, len(labels))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Batch(Base):
    """A labeling batch: tasks picked by one strategy, QA'd and gated as a unit."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    strategy: Mapped[str] = mapped_column(String(100))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    guideline_version: Mapped[int] = mapped_column(Integer, default=1)
    # open -> passed | flagged -> (resolved)
    status: Mapped[BatchStatus] = mapped_column(enum_type(BatchStatus), default=BatchStatus.OPEN,
                                                index=True)
    n_auto_accepted: Mapped[int] = mapped_column(Integer, default=0)
    qa: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    tasks: Mapped[list[Task]] = relationship(back_populates="batch")


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    reason: Mapped[TaskReason] = mapped_column(enum_type(TaskReason, length=50))
    required: Mapped[int] = mapped_column(Integer, default=1)
    prelabel: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prelabel_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[TaskStatus] = mapped_column(enum_type(TaskStatus), default=TaskStatus.OPEN,
                                               index=True)

    batch: Mapped[Batch] = relationship(back_populates="tasks")
    assignments: Mapped[list[Assignment]] = relationship(back_populates="task")


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("task_id", "annotator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    annotator: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[AssignmentStatus] = mapped_column(enum_type(AssignmentStatus),
                                                     default=AssignmentStatus.OPEN)
    # created_at is when the task was assigned; submitted_at when it was answered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    task: Mapped[Task] = relationship(back_populates="assignments")


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("task_id", "annotator"),
                      UniqueConstraint("annotator", "idempotency_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    annotator: Mapped[str] = mapped_column(String(200), index=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: skipped
    # The answer under the project's label schema ({"label": ...} for single-label).
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[AnswerStatus] = mapped_column(enum_type(AnswerStatus),
                                                 default=AnswerStatus.SUBMITTED)
    skip_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    unsure: Mapped[bool] = mapped_column(Boolean, default=False)  # flagged by the annotator
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    seconds_spent: Mapped[float | None] = mapped_column(Float, nullable=True)
    accepted_prelabel: Mapped[bool] = mapped_column(Boolean)
    guideline_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LabelEvent(Base):
    """One change of an item's label: who, when, from, to and why. Appended, never changed;
    an item's current label is its newest event (the ``final_labels`` view)."""

    __tablename__ = "label_events"
    __table_args__ = (Index("ix_label_events_item_newest", "item_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    by: Mapped[str] = mapped_column(String(200))  # a user, or "model:<id>" for auto-accept
    reason: Mapped[LabelReason] = mapped_column(enum_type(LabelReason))
    from_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to_label: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: unlabeled
    origin: Mapped[LabelOrigin | None] = mapped_column(enum_type(LabelOrigin), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True,
                                                 index=True)
    annotators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    posterior: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    guideline_version: Mapped[int] = mapped_column(Integer, default=1)
    note: Mapped[str] = mapped_column(Text, default="")


class FinalLabel(Base):
    """An item's current label: a read-only view over ``label_events`` (each item's newest
    event, unless that event sent it back to unlabeled). Write labels with
    ``store.labels.record_labels``."""

    __tablename__ = "final_labels"
    __table_args__ = {"info": {"is_view": True}}

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True,
                                                  index=True)
    label: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(20))  # human | auto | given
    annotators: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    posterior: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    guideline_version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    event_id: Mapped[int] = mapped_column(Integer)  # the label event this label comes from


class Guideline(Base):
    """One version of a project's annotation guideline. ``Project.guideline_version`` and
    ``guideline_text`` mirror the newest; answers and labels record the version they were
    given under."""

    __tablename__ = "guidelines"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the labels it affects
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetVersion(Base):
    """An immutable snapshot of final labels; ``digest`` is the sha256 of its rows."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    split: Mapped[str] = mapped_column(String(20))  # train | eval
    digest: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(Integer)
    label_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    batch_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"),
                                                  nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetRow(Base):
    __tablename__ = "dataset_rows"
    __table_args__ = (Index("ix_dataset_rows_version_item", "version_id", "item_id"),
                      Index("ix_dataset_rows_item", "item_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    label: Mapped[str] = mapped_column(String(200))
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Provenance a lineage query filters on (also in ``lineage``): the label event the row's
    # label comes from (None: the label came with the data), its batch, origin, guideline
    # version and the model that pre-labeled the item.
    label_event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    guideline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prelabel_model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RemediationTarget(Base):
    """An evaluation finding turned into work on the data: an owner, an action, and a
    status that closes once a new dataset version addresses it and the next evaluation
    confirms it. ``closed_at - created_at`` is the evaluation-to-remediation time."""

    __tablename__ = "remediation_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))  # whose evaluation
    kind: Mapped[FindingKind] = mapped_column(enum_type(FindingKind))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # A slice finding's attribute and value ({"attribute": "annotator", "value": "ann3"}).
    slice: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    figure: Mapped[float] = mapped_column(Float)  # the finding's size (drop, count, rate)
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)  # to recover to
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # item ids, slices
    action: Mapped[TargetAction] = mapped_column(enum_type(TargetAction))
    boost: Mapped[float] = mapped_column(Float, default=2.0)
    owner: Mapped[str] = mapped_column(String(200))
    status: Mapped[TargetStatus] = mapped_column(enum_type(TargetStatus),
                                                 default=TargetStatus.OPEN, index=True)
    rereview_batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"),
                                                          nullable=True)
    guideline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    addressed_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), nullable=True)
    closed_by_model_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"),
                                                           nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    addressed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Job(Base):
    """Long work (pre-labeling, ...) run by a queue worker in chunks, each committed: its
    state and progress are read while it runs; killed, it resumes from its last chunk."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True,
                                                   nullable=True)
    kind: Mapped[JobKind] = mapped_column(enum_type(JobKind))
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus), default=JobStatus.QUEUED,
                                              index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    done_at_start: Mapped[int] = mapped_column(Integer, default=0)  # this attempt's start
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
