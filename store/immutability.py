"""Frozen dataset versions, label history and the audit log cannot be changed or deleted
through the ORM: they are appended to, never rewritten."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from labelloop.core.errors import ImmutableRecordError, ImmutableVersionError
from labelloop.store.models import AuditEvent, DatasetRow, DatasetVersion, LabelEvent


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_versions(session: Session, _ctx, _instances) -> None:  # noqa: ANN001
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, DatasetVersion | DatasetRow) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise ImmutableVersionError(
                f"dataset version rows are immutable ({type(obj).__name__} id={obj.id})",
                where="versions",
            )
        if isinstance(obj, LabelEvent | AuditEvent) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise ImmutableRecordError(
                f"{type(obj).__name__} rows are append-only (id={obj.id})", where="history")
