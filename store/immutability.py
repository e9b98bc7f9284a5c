"""Frozen dataset versions cannot be changed or deleted through the ORM."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from labelloop.core.errors import ImmutableVersionError
from labelloop.store.models import DatasetRow, DatasetVersion


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
