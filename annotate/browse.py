"""Browse a project's tasks a page at a time, filtered, with an exact count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.enums import TaskReason, TaskStatus
from labelloop.core.errors import ValidationError
from labelloop.store.models import Batch, Project, Task
from labelloop.store.pages import Page, keyset_page


def browse_tasks(session: Session, project: Project, *, status: str | None = None,
                 reason: str | None = None, batch_id: int | None = None,
                 prelabel: str | None = None, limit: int = 50,
                 after: int | None = None) -> Page:
    """The project's tasks by id, filtered by status, routing reason, batch or pre-label."""
    query = (select(Task).join(Batch, Batch.id == Task.batch_id)
             .where(Batch.project_id == project.id))
    if status is not None:
        query = query.where(Task.status == _member(TaskStatus, status, "status"))
    if reason is not None:
        query = query.where(Task.reason == _member(TaskReason, reason, "reason"))
    if batch_id is not None:
        query = query.where(Task.batch_id == batch_id)
    if prelabel is not None:
        query = query.where(Task.prelabel == prelabel)
    return keyset_page(session, query, Task.id, limit, after, lambda t: {
        "task_id": t.id, "batch_id": t.batch_id, "item_id": t.item_id,
        "status": str(t.status), "reason": str(t.reason), "required": t.required,
        "prelabel": t.prelabel, "prelabel_confidence": t.prelabel_confidence})


def _member(enum: Any, value: str, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ValidationError(f"{where} must be one of {[m.value for m in enum]}, got "
                              f"{value!r}", where=where) from None
