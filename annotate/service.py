"""Annotators fetch tasks (with the pre-label) and submit accept-or-correct answers.

Gold items (``split="gold"``, an expert label in ``given_label``) are mixed into each
annotator's stream at the project's ``gold_share``, unannounced: a gold task looks like any
other task (a routing reason, a pre-label). An annotator flagged for recalibration gets no
tasks, and their open ones go back to the others.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.selection.auto_accept import critical_mask
from labelloop.selection.routing import AUDIT, CALIBRATION, LOW_CONFIDENCE, SAFETY_CRITICAL
from labelloop.store.models import (
    Annotation,
    Annotator,
    Assignment,
    Batch,
    Item,
    Prediction,
    Project,
    Task,
)

GOLD_SPLIT = "gold"


@dataclass
class TaskView:
    task_id: int
    batch_id: int
    item_id: int
    text: str
    prelabel: str | None
    prelabel_confidence: float | None
    reason: str
    labels: list[str]
    guideline_version: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _check_annotator(annotator: str) -> str:
    annotator = (annotator or "").strip()
    if not annotator or len(annotator) > 200:
        raise ValidationError("annotator must be a non-empty name of at most 200 characters",
                              where="annotator")
    return annotator


def next_tasks(session: Session, project: Project, annotator: str, limit: int = 10,
               ) -> list[TaskView]:
    """The annotator's open assignments, topped up with open tasks that still need people.

    A task needing k annotators is handed to k different people (overlap); nobody gets the
    same task twice. Tasks come in batch order, most valuable first, with gold tasks mixed
    in (see :func:`_gold_tasks`). A flagged annotator gets ``ConflictError``.
    """
    annotator = _check_annotator(annotator)
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}", where="limit")
    _check_active(session, project, annotator)
    mine = list(session.scalars(
        select(Task).join(Assignment).join(Batch).where(
            Batch.project_id == project.id, Assignment.annotator == annotator,
            Assignment.status == "open").order_by(Task.batch_id, Task.score.desc()).limit(limit)))
    if len(mine) < limit:
        taken = select(Assignment.task_id).where(Assignment.annotator == annotator)
        n_assigned = (select(func.count(Assignment.id)).where(Assignment.task_id == Task.id)
                      .correlate(Task).scalar_subquery())
        fresh = list(session.scalars(
            select(Task).join(Batch).where(
                Batch.project_id == project.id, Batch.status == "open", Task.status == "open",
                Task.id.not_in(taken), n_assigned < Task.required)
            .order_by(Task.batch_id, Task.score.desc()).limit(limit - len(mine))))
        fresh, gold = _gold_tasks(session, project, annotator, fresh, limit - len(mine))
        for task in fresh + gold:
            session.add(Assignment(task_id=task.id, annotator=annotator))
        session.flush()
        # the order a later call reads back: batch, then score
        mine += sorted(fresh + gold, key=lambda t: (t.batch_id, -(t.score or 0.0)))
    return [_view(session, project, t) for t in mine]


def _check_active(session: Session, project: Project, annotator: str) -> None:
    row = session.scalar(select(Annotator).where(Annotator.project_id == project.id,
                                                 Annotator.name == annotator))
    if row is not None and row.status == "flagged":
        raise ConflictError(f"annotator {annotator!r} is flagged for recalibration: {row.reason}",
                            where="annotator")


def _gold_tasks(session: Session, project: Project, annotator: str, fresh: list[Task],
                room: int) -> tuple[list[Task], list[Task]]:
    """New gold tasks for ``annotator``, and ``fresh`` trimmed to leave them room.

    Over the annotator's whole stream in the project, gold tasks make up ``gold_share`` of
    what they were handed. Gold rides along real work only (none once the real tasks are
    gone), each gold item at most once per annotator, and each gold task takes a random
    place among this hand-out's real tasks, in the batch of its neighbour.
    """
    if not fresh or project.gold_share <= 0:
        return fresh, []
    gold_items = select(Item).where(Item.project_id == project.id, Item.split == GOLD_SPLIT,
                                    Item.given_label.is_not(None))
    given = select(Task.item_id).join(Assignment).where(Assignment.annotator == annotator)
    unseen = list(session.scalars(gold_items.where(Item.id.not_in(given)).order_by(Item.id)))
    if not unseen:
        return fresh, []
    since = session.scalar(select(func.min(Item.created_at)).where(
        Item.id.in_(gold_items.with_only_columns(Item.id))))
    n_gold, n_real = _stream_counts(session, project, annotator, since)
    ratio = project.gold_share / (1.0 - project.gold_share)  # gold per real task
    cap = max(1, round(project.gold_share * room))  # no run of gold tasks in one hand-out

    def due(r: int) -> int:
        return min(len(unseen), cap, max(0, int(ratio * (n_real + r) + 1e-9) - n_gold))

    first = fresh[0]
    keep = next(r for r in range(len(fresh), -1, -1) if r + due(r) <= room)
    fresh, n_new = fresh[:keep], due(keep)
    rng = random.Random(f"{project.id}/{annotator}/{n_gold + n_real}")
    gold = []
    for item in rng.sample(unseen, n_new):
        # just after a random real task of this hand-out, or just before the next real task
        near = rng.choice(fresh) if fresh else None
        anchor = near or first
        pred = session.scalar(select(Prediction).where(Prediction.item_id == item.id)
                              .order_by(Prediction.id.desc()).limit(1))
        task = Task(batch_id=anchor.batch_id, item_id=item.id, required=1,
                    reason=_routing_reason(project, pred),
                    prelabel=pred.label if pred is not None else None,
                    prelabel_confidence=pred.confidence if pred is not None else None,
                    score=(anchor.score or 0.0) + (-0.5 if near is not None else 0.5))
        session.add(task)
        gold.append(task)
    session.flush()
    return fresh, gold


def _routing_reason(project: Project, pred: Prediction | None) -> str:
    """The reason routing would give the item (``selection.routing`` rule 1, else 2), so
    that a gold task shows a reason like its neighbours."""
    if pred is None:
        return LOW_CONFIDENCE
    critical = np.array([project.labels.index(c) for c in project.critical_labels], dtype=int)
    if critical_mask(np.array([pred.probs]), critical, project.critical_plausibility)[0]:
        return SAFETY_CRITICAL
    return LOW_CONFIDENCE


def _stream_counts(session: Session, project: Project, annotator: str,
                   since: datetime | None) -> tuple[int, int]:
    """(gold, real) tasks handed to ``annotator`` in the project since ``since`` (when the
    first gold item arrived: work before it owes no gold)."""
    is_gold = Item.split == GOLD_SPLIT
    rows = dict(session.execute(
        select(is_gold, func.count(Assignment.id))
        .select_from(Assignment).join(Task).join(Item, Item.id == Task.item_id)
        .where(Item.project_id == project.id, Assignment.annotator == annotator,
               Assignment.created_at >= since)
        .group_by(is_gold)).all())
    return int(rows.get(True, 0)), int(rows.get(False, 0))


def _view(session: Session, project: Project, task: Task) -> TaskView:
    item = session.get(Item, task.item_id)
    assert item is not None  # foreign key
    return TaskView(task.id, task.batch_id, task.item_id, item.text, task.prelabel,
                    task.prelabel_confidence, task.reason, list(project.labels),
                    project.guideline_version)


# Audit and calibration answers grade the model: one annotator's slip would count as a model
# error (a 6% annotator error rate caps an audit at 0.94 whatever the model does). So when an
# answer disagrees with the pre-label there, more annotators are asked and the batch's
# aggregation (Dawid-Skene) decides. Agreement needs no second opinion: an annotator erring
# onto exactly the model's wrong label is rare.
ADJUDICATED_REASONS = (AUDIT, CALIBRATION)
ADJUDICATION_VOTES = 3


@dataclass
class Submission:
    """What one answer did: the stored answer, and what the loop must react to
    (``labelloop.loop`` wires QA and gold scoring to these flags)."""

    annotation: Annotation
    project: Project
    batch: Batch
    batch_complete: bool
    gold: bool


def submit(session: Session, task_id: int, annotator: str, label: str,
           seconds_spent: float | None = None) -> Submission:
    """Record one answer and close the task when enough people answered.

    An answer that disagrees with the pre-label of an audit or calibration task asks for
    ``ADJUDICATION_VOTES`` answers in all (at most as many as the project has annotators).
    The returned flags say whether the batch has no open task left and whether the item was
    gold; QA and re-scoring are not this stage's work."""
    annotator = _check_annotator(annotator)
    task = session.get(Task, task_id)
    if task is None:
        raise NotFoundError(f"no task {task_id}", where="task_id")
    batch = task.batch
    project = session.get(Project, batch.project_id)
    assert project is not None
    if label not in project.labels:
        raise ValidationError(f"unknown label {label!r} for project {project.name!r}",
                              where="label")
    if seconds_spent is not None and seconds_spent < 0:
        raise ValidationError("seconds_spent cannot be negative", where="seconds_spent")
    _check_active(session, project, annotator)
    if task.status != "open" or batch.status != "open":
        raise ConflictError(f"task {task_id} is closed", where="task_id")
    assignment = session.scalar(select(Assignment).where(
        Assignment.task_id == task.id, Assignment.annotator == annotator))
    if assignment is not None and assignment.status == "submitted":
        raise ConflictError(f"{annotator} already answered task {task_id}", where="task_id")
    if assignment is None:
        n = session.scalar(select(func.count(Assignment.id)).where(
            Assignment.task_id == task.id)) or 0
        if n >= task.required:
            raise ConflictError(f"task {task_id} already has its {task.required} annotators",
                                where="task_id")
        assignment = Assignment(task_id=task.id, annotator=annotator)
        session.add(assignment)
    assignment.status = "submitted"
    annotation = Annotation(task_id=task.id, item_id=task.item_id, annotator=annotator,
                            label=label, seconds_spent=seconds_spent,
                            accepted_prelabel=(label == task.prelabel),
                            guideline_version=project.guideline_version)
    session.add(annotation)
    session.flush()
    if task.reason in ADJUDICATED_REASONS and label != task.prelabel and \
            task.required < ADJUDICATION_VOTES:
        task.required = max(task.required, min(ADJUDICATION_VOTES,
                                               _n_annotators(session, project)))
    n_done = session.scalar(select(func.count(Annotation.id)).where(
        Annotation.task_id == task.id)) or 0
    if n_done >= task.required:
        task.status = "done"
        session.flush()
    item = session.get(Item, task.item_id)
    return Submission(annotation, project, batch, batch_complete=is_complete(session, batch),
                      gold=item is not None and item.split == GOLD_SPLIT)


def _n_annotators(session: Session, project: Project) -> int:
    """How many people, not flagged for recalibration, have been assigned tasks in
    ``project``: the most answers a task can get."""
    flagged = select(Annotator.name).where(Annotator.project_id == project.id,
                                           Annotator.status == "flagged")
    return session.scalar(select(func.count(func.distinct(Assignment.annotator)))
                          .join(Task, Task.id == Assignment.task_id)
                          .join(Batch, Batch.id == Task.batch_id)
                          .where(Batch.project_id == project.id,
                                 Assignment.annotator.not_in(flagged))) or 0


def is_complete(session: Session, batch: Batch) -> bool:
    """An open batch with no open task left: ready for QA and its gate."""
    if batch.status != "open":
        return False
    open_left = session.scalar(select(func.count(Task.id)).where(
        Task.batch_id == batch.id, Task.status == "open")) or 0
    return open_left == 0


@dataclass
class Released:
    n_tasks: int
    complete: list[Batch]  # batches so left with no open task: their QA is due


def release_open_tasks(session: Session, project: Project, annotator: str) -> Released:
    """Hand ``annotator``'s unanswered tasks back: their open assignments are removed, so the
    tasks go to the next person who asks; a gold task made for them is removed with its
    assignment."""
    session.flush()  # pending changes first: expire_all below would drop them
    rows = session.execute(
        select(Assignment.id, Task.id, Task.batch_id, Item.split)
        .select_from(Assignment).join(Task).join(Batch).join(Item, Item.id == Task.item_id)
        .where(Batch.project_id == project.id, Assignment.annotator == annotator,
               Assignment.status == "open")).all()
    if not rows:
        return Released(0, [])
    session.execute(delete(Assignment).where(Assignment.id.in_([r[0] for r in rows])),
                    execution_options={"synchronize_session": False})
    gold = [r[1] for r in rows if r[3] == GOLD_SPLIT]
    if gold:
        session.execute(delete(Task).where(Task.id.in_(gold)),
                        execution_options={"synchronize_session": False})
    session.expire_all()  # the bulk deletes bypassed the identity map
    batches = [session.get(Batch, batch_id) for batch_id in sorted({r[2] for r in rows})]
    return Released(len(rows), [b for b in batches if b is not None and is_complete(session, b)])
