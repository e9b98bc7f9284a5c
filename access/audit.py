"""The audit log: who did what, when, on what. Appended in the same transaction as the act,
so an act and its record are committed together or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.enums import AuditAction
from labelloop.store.models import AuditEvent


def record(session: Session, actor: str, action: AuditAction, *, project_id: int | None = None,
           target: str = "", **detail: Any) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, project_id=project_id,
                       target=target[:300], detail=detail)
    session.add(event)  # written with the act's own flush or commit
    return event


def read_log(session: Session, *, project_id: int | None = None, limit: int = 100,
             before_id: int | None = None) -> list[AuditEvent]:
    """Newest first; ``before_id`` pages back."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if project_id is not None:
        q = q.where(AuditEvent.project_id == project_id)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return list(session.scalars(q))
