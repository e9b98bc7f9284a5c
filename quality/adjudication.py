"""The reviewer's queue and one-item adjudication.

The queue holds, per closed batch, the items people did not settle: those held for review
(a safety-critical disagreement, no label until a reviewer decides), those whose answers
disagree, and those an annotator flagged as unsure, with every answer side by side (who,
when, under which guideline version). Flagged batches (held by a gate) are listed apart:
resolving a gate is a batch's decision (``quality.service.resolve_batch``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from labelloop.annotate.service import GOLD_SPLIT
from labelloop.core.enums import AnswerStatus, BatchStatus, LabelReason
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.quality.service import adjudication
from labelloop.store.labels import record_labels
from labelloop.store.models import Annotation, Batch, FinalLabel, Item, LabelEvent, Project, Task

HELD, DISAGREEMENT, UNSURE = "held", "disagreement", "unsure"


@dataclass
class SideBySide:
    """One person's answer to a queued item."""

    annotator: str
    label: str | None
    status: str
    unsure: bool
    skip_reason: str | None
    at: datetime
    guideline_version: int


@dataclass
class QueuedItem:
    """An item waiting for a reviewer: ``why`` is held, disagreement or unsure;
    ``critical`` when an answer or the pre-label names a safety-critical label."""

    item_id: int
    batch_id: int
    task_id: int
    why: str
    critical: bool
    text: str
    reason: str
    prelabel: str | None
    prelabel_confidence: float | None
    current_label: str | None
    answers: list[SideBySide] = field(default_factory=list)


@dataclass
class GatedBatch:
    batch_id: int
    gate_reason: str | None
    figures: dict[str, Any]
    n_tasks: int
    closed_at: datetime | None


@dataclass
class ReviewQueue:
    items: list[QueuedItem]
    gated: list[GatedBatch]
    n_items: int  # all queued items (``items`` is the first ``limit``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unsettled(project: Project) -> Any:
    """Tasks of the project's closed batches (gold aside) whose submitted answers disagree
    or were flagged unsure, and whose item no reviewer has adjudicated in that batch."""
    answers = (select(Annotation.task_id.label("task_id"),
                      func.count(distinct(Annotation.label)).label("n_labels"),
                      func.max(case((Annotation.unsure, 1), else_=0)).label("unsure"))
               .where(Annotation.status == AnswerStatus.SUBMITTED)
               .group_by(Annotation.task_id).subquery())
    adjudicated = exists().where(LabelEvent.item_id == Task.item_id,
                                 LabelEvent.batch_id == Task.batch_id,
                                 LabelEvent.reason == LabelReason.ADJUDICATION)
    return (select(Task, answers.c.n_labels, answers.c.unsure)
            .join(answers, answers.c.task_id == Task.id)
            .join(Batch, Batch.id == Task.batch_id).join(Item, Item.id == Task.item_id)
            .where(Batch.project_id == project.id, Batch.status != BatchStatus.OPEN,
                   Item.split != GOLD_SPLIT, ~adjudicated,
                   or_(answers.c.n_labels > 1, answers.c.unsure == 1)))


def _held(session: Session, project: Project) -> list[Task]:
    pairs = [(b.id, i) for b in session.scalars(select(Batch).where(
        Batch.project_id == project.id, Batch.status != BatchStatus.OPEN))
        for i in (b.qa or {}).get("held_for_review", [])]
    if not pairs:
        return []
    return list(session.scalars(select(Task).where(or_(*[
        and_(Task.batch_id == b, Task.item_id == i) for b, i in pairs]))))


def review_queue(session: Session, project: Project, limit: int = 50) -> ReviewQueue:
    """The items waiting for a reviewer, held ones first, then disagreements on
    safety-critical labels, then other disagreements, then unsure answers (oldest batch
    first within each), and the batches a gate holds."""
    held = _held(session, project)
    held_ids = {t.id for t in held}
    found: list[tuple[Task, str]] = [(t, HELD) for t in held]
    for task, n_labels, _unsure in session.execute(_unsettled(project)):
        if task.id not in held_ids:
            found.append((task, DISAGREEMENT if n_labels > 1 else UNSURE))
    items = _queued(session, project, found)
    order = {HELD: 0, DISAGREEMENT: 1, UNSURE: 2}
    items.sort(key=lambda q: (order[q.why], not q.critical, q.batch_id, q.item_id))
    gated = [GatedBatch(b.id, b.gate_reason, (b.qa or {}).get("gate", {}).get("figures", {}),
                        int((b.qa or {}).get("n_tasks", 0)), b.closed_at)
             for b in session.scalars(select(Batch).where(
                 Batch.project_id == project.id, Batch.status == BatchStatus.FLAGGED)
                 .order_by(Batch.id))]
    return ReviewQueue(items[:limit], gated, len(items))


def _queued(session: Session, project: Project, found: list[tuple[Task, str]],
            ) -> list[QueuedItem]:
    if not found:
        return []
    task_ids = [t.id for t, _ in found]
    item_ids = [t.item_id for t, _ in found]
    texts = dict(session.execute(select(Item.id, Item.text).where(Item.id.in_(item_ids))).all())
    finals = dict(session.execute(select(FinalLabel.item_id, FinalLabel.label)
                                  .where(FinalLabel.item_id.in_(item_ids))).all())
    answers: dict[int, list[SideBySide]] = {}
    for a in session.scalars(select(Annotation).where(Annotation.task_id.in_(task_ids))
                             .order_by(Annotation.created_at, Annotation.id)):
        answers.setdefault(a.task_id, []).append(SideBySide(
            a.annotator, a.label, a.status.value, a.unsure, a.skip_reason,
            a.updated_at or a.created_at, a.guideline_version))
    critical = set(project.critical_labels)
    out = []
    for task, why in found:
        given = answers.get(task.id, [])
        named = {a.label for a in given} | {task.prelabel}
        out.append(QueuedItem(task.item_id, task.batch_id, task.id, why,
                              bool(named & critical), texts[task.item_id], str(task.reason),
                              task.prelabel, task.prelabel_confidence,
                              finals.get(task.item_id), given))
    return out


def adjudicate_item(session: Session, project: Project, batch_id: int, item_id: int,
                    label: str, reviewer: str, note: str = "") -> LabelEvent:
    """A reviewer's decision on one item of a closed batch: it lands in the label history
    (reason adjudication, origin reviewed) and leaves the queue; an item held for review
    gets its first label. The batch's gate status is not touched."""
    if not reviewer.strip():
        raise ValidationError("reviewer name is empty", where="reviewer")
    batch = session.get(Batch, batch_id)
    if batch is None or batch.project_id != project.id:
        raise NotFoundError(f"no batch {batch_id} in this project", where="batch_id")
    if batch.status == BatchStatus.OPEN:
        raise ConflictError(f"batch {batch_id} is still open: its answers are not all in",
                            where="batch_id")
    if session.scalar(select(Task.id).where(Task.batch_id == batch_id,
                                            Task.item_id == item_id)) is None:
        raise NotFoundError(f"item {item_id} is not in batch {batch_id}", where="item_id")
    held = list((batch.qa or {}).get("held_for_review", []))
    change = adjudication(session, batch, project, item_id, label, reviewer, note,
                          held=item_id in held)
    record_labels(session, [change])
    if item_id in held:
        batch.qa = {**batch.qa, "held_for_review": [i for i in held if i != item_id]}
    session.flush()
    event = session.scalar(select(LabelEvent).where(LabelEvent.item_id == item_id)
                           .order_by(LabelEvent.id.desc()).limit(1))
    assert event is not None
    return event
