"""Request and response bodies (pydantic), kept apart from the ORM tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    error: str
    message: str
    where: str | None = None


class ErrorBody(BaseModel):
    detail: ErrorDetail


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["banking-intents"])
    labels: list[str] = Field(min_length=2, examples=[["card_arrival", "lost_or_stolen_card"]])
    critical_labels: list[str] = Field(default_factory=list)
    label_descriptions: dict[str, str] = Field(default_factory=dict)
    guideline_text: str = ""
    overlap: int = Field(default=1, ge=1, le=10)
    critical_overlap: int = Field(default=2, ge=1, le=10)
    confidence_threshold: float = Field(default=0.9, ge=0, le=1)
    audit_share: float = Field(default=0.05, ge=0, le=1)
    target_accuracy: float = Field(default=0.98, ge=0, le=1)
    min_agreement: float = Field(default=0.6, ge=-1, le=1)


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
    target_accuracy: float
    min_agreement: float
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


class PrelabelOut(BaseModel):
    model_version_id: int
    model_name: str
    n_items: int
    n_new: int
    seconds: float
    items_per_second: float


class NextBatchRequest(BaseModel):
    size: int = Field(default=50, ge=1, le=100_000)
    strategy: str = "default"
    auto_accept: bool = True
    seed: int | None = None
    class_boost: dict[str, float] | None = None


class BatchOut(BaseModel):
    batch_id: int
    strategy: str
    model_version_id: int
    n_pool: int
    n_tasks: int
    n_auto_accepted: int
    reasons: dict[str, int]
    selection_seconds: float


class TaskOut(BaseModel):
    task_id: int
    batch_id: int
    item_id: int
    text: str
    prelabel: str | None
    prelabel_confidence: float | None
    reason: str
    labels: list[str]
    guideline_version: int


class SubmitRequest(BaseModel):
    annotator: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1)
    seconds_spent: float | None = Field(default=None, ge=0)


class AnnotationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    task_id: int
    item_id: int
    annotator: str
    label: str
    accepted_prelabel: bool
    guideline_version: int


class BatchQAOut(BaseModel):
    batch_id: int
    status: str
    strategy: str
    gate_reason: str | None
    qa: dict[str, Any]


class ResolveRequest(BaseModel):
    reviewer: str = Field(min_length=1)
    corrections: dict[int, str] = Field(default_factory=dict)
    note: str = ""


class FreezeRequest(BaseModel):
    split: str = Field(default="train", pattern="^(train|eval)$")
    name: str | None = None


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


class TrainRequest(BaseModel):
    train_version: str | int
    eval_version: str | int | None = None
    c: float = Field(default=10.0, gt=0)


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
