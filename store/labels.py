"""Label history: every change to an item's label is appended as a ``LabelEvent``.

The current label (``FinalLabel``) is a view over these events, so this is the one way to
set, correct or revert a label; nothing overwrites a label in place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from labelloop.core.enums import LabelOrigin, LabelReason
from labelloop.store.models import FinalLabel, LabelEvent, utcnow

CHUNK = 5_000  # item ids per "current label" look-up (bound parameters stay few)


@dataclass
class NewLabel:
    """One label change to record: ``to_label`` None sends the item back to unlabeled."""

    item_id: int
    to_label: str | None
    by: str
    reason: LabelReason
    origin: LabelOrigin | None
    batch_id: int | None = None
    annotators: list[str] = field(default_factory=list)
    agreement: float | None = None
    posterior: dict[str, Any] = field(default_factory=dict)
    model_version_id: int | None = None
    guideline_version: int = 1
    note: str = ""


def current_labels(session: Session, item_ids: list[int]) -> dict[int, str]:
    """Item id -> its current label, for those of ``item_ids`` that have one."""
    out: dict[int, str] = {}
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start:start + CHUNK]
        out.update(session.execute(select(FinalLabel.item_id, FinalLabel.label)
                                   .where(FinalLabel.item_id.in_(chunk))).all())
    return out


def record_labels(session: Session, changes: list[NewLabel]) -> int:
    """Append one event per change (in one multi-row insert), each with the label it
    replaces. Returns how many were written."""
    if not changes:
        return 0
    session.flush()  # earlier events of this unit of work first: "from" reads the view
    before = current_labels(session, sorted({c.item_id for c in changes}))
    now = utcnow()
    rows = []
    for c in changes:
        row = asdict(c) | {"from_label": before.get(c.item_id), "at": now}
        if c.to_label is None:
            row["origin"] = None
        before[c.item_id] = c.to_label  # type: ignore[assignment]  # a later change's "from"
        rows.append(row)
    session.execute(insert(LabelEvent), rows)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, FinalLabel):
            session.expire(obj)  # the view's rows changed under the identity map
    return len(rows)


def label_history(session: Session, item_id: int) -> list[LabelEvent]:
    """Every change to the item's label, oldest first."""
    return list(session.scalars(select(LabelEvent).where(LabelEvent.item_id == item_id)
                                .order_by(LabelEvent.id)))
