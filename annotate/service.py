"""Annotators fetch tasks (with the pre-label) and submit accept-or-correct answers.

Gold items (``split="gold"``, an expert label in ``given_label``) are mixed into each
annotator's stream at the project's ``gold_share``, unannounced: a gold task looks like any
other task (a routing reason, a pre-label). An annotator flagged for recalibration gets no
tasks, and their open ones go back to the others.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.orm import Session

from labelloop.annotate.views import TaskView, suggested, task_views
from labelloop.core.enums import AnswerStatus, AssignmentStatus, BatchStatus, TaskStatus
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.core.names import check_name, check_text, shorten
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
    utcnow,
)

GOLD_SPLIT = "gold"
DEFAULT_TIMEOUT_S = 1800.0  # an unanswered assignment goes back to the pool after this


def _check_annotator(annotator: str) -> str:
    return check_name(annotator or "", "annotator")


def _holding(cutoff: datetime) -> Any:
    """An assignment that holds a place on its task: answered, or handed out since
    ``cutoff`` (older open ones belong to someone who went away, and no longer count)."""
    return or_(Assignment.status == AssignmentStatus.SUBMITTED,
               and_(Assignment.status == AssignmentStatus.OPEN,
                    Assignment.created_at >= cutoff))


def _holders(task_id: Any, cutoff: datetime) -> Any:
    """How many assignments hold a place on ``task_id`` (a value or a correlated column)."""
    return select(func.count(Assignment.id)).where(Assignment.task_id == task_id,
                                                   _holding(cutoff))


def release_stale(session: Session, project: Project, cutoff: datetime) -> int:
    """Take back open assignments handed out before ``cutoff`` (their holder went away), with
    any draft answer on them, so the tasks go to whoever asks next."""
    stale = session.execute(
        select(Assignment.id, Assignment.task_id, Assignment.annotator)
        .join(Task, Task.id == Assignment.task_id).join(Batch, Batch.id == Task.batch_id)
        .where(Batch.project_id == project.id, Batch.status == BatchStatus.OPEN,
               Assignment.status == AssignmentStatus.OPEN, Assignment.created_at < cutoff)
    ).all()
    if stale:
        session.execute(delete(Annotation).where(
            Annotation.status == AnswerStatus.DRAFT,
            tuple_(Annotation.task_id, Annotation.annotator).in_(
                [(task_id, annotator) for _, task_id, annotator in stale])))
        session.execute(delete(Assignment).where(Assignment.id.in_([r[0] for r in stale])))
    return len(stale)


def next_tasks(session: Session, project: Project, annotator: str, limit: int = 10, *,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> list[TaskView]:
    """The annotator's open assignments, topped up with open tasks that still need people.

    A task needing k annotators is handed to k different people (overlap); nobody gets the
    same task twice, and a closed task never comes back. An assignment left unanswered for
    ``timeout_s`` is released to others. Tasks come in batch order, most valuable first,
    with gold tasks mixed in (see :func:`_gold_tasks`). A flagged annotator gets
    ``ConflictError``.

    Under concurrency the task rows are the lock: PostgreSQL claims candidates with
    ``SELECT ... FOR NO KEY UPDATE SKIP LOCKED`` (the weaker row lock, so inserting an
    answer that refers to a locked task does not wait) and counts holders again under the
    lock; SQLite runs each hand-out as one short write transaction (``BEGIN IMMEDIATE``).
    """
    annotator = _check_annotator(annotator)
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}", where="limit")
    _check_active(session, project, annotator)
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    release_stale(session, project, cutoff)
    mine = _held(session, project, annotator, limit)
    if len(mine) < limit:
        fresh = _claim(session, project, annotator, limit - len(mine), cutoff)
        fresh, gold = _gold_tasks(session, project, annotator, fresh, limit - len(mine))
        for task in fresh + gold:
            session.add(Assignment(task_id=task.id, annotator=annotator))
        session.flush()
        # the order a later call reads back: batch, then score
        mine += sorted(fresh + gold, key=lambda t: (t.batch_id, -(t.score or 0.0)))
    return task_views(session, project, mine)


def _held(session: Session, project: Project, annotator: str, limit: int) -> list[Task]:
    """Open tasks of open batches that ``annotator`` holds and has not answered."""
    return list(session.scalars(
        select(Task).join(Assignment).join(Batch).where(
            Batch.project_id == project.id, Batch.status == BatchStatus.OPEN,
            Task.status == TaskStatus.OPEN, Assignment.annotator == annotator,
            Assignment.status == AssignmentStatus.OPEN)
        .order_by(Task.batch_id, Task.score.desc()).limit(limit)))


def my_tasks(session: Session, project: Project, annotator: str, limit: int = 10,
             ) -> list[TaskView]:
    """The tasks ``annotator`` holds, unanswered; hands out nothing new (read-only)."""
    annotator = _check_annotator(annotator)
    return task_views(session, project, _held(session, project, annotator, limit))


def _claim(session: Session, project: Project, annotator: str, room: int,
           cutoff: datetime) -> list[Task]:
    """Up to ``room`` open tasks with a free place, locked for this transaction."""
    taken = select(Assignment.task_id).where(Assignment.annotator == annotator)
    n_held = _holders(Task.id, cutoff).correlate(Task).scalar_subquery()
    candidates = list(session.scalars(
        select(Task).join(Batch).where(
            Batch.project_id == project.id, Batch.status == BatchStatus.OPEN,
            Task.status == TaskStatus.OPEN, Task.id.not_in(taken), n_held < Task.required)
        .order_by(Task.batch_id, Task.score.desc()).limit(room)
        .with_for_update(skip_locked=True, of=Task, key_share=True)))
    if session.get_bind().dialect.name == "sqlite" or not candidates:
        return candidates  # one writer at a time: what was counted still holds
    # Locked now: no one else can add a holder, so a fresh count is the truth.
    held = dict(session.execute(
        select(Assignment.task_id, func.count(Assignment.id))
        .where(Assignment.task_id.in_([t.id for t in candidates]), _holding(cutoff))
        .group_by(Assignment.task_id)).all())
    return [t for t in candidates if held.get(t.id, 0) < t.required]


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
        pred = suggested(list(session.scalars(select(Prediction).where(
            Prediction.item_id == item.id))), anchor.batch.model_version_id)
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
    probs = np.array([pred.vector(project.labels)])
    if critical_mask(probs, critical, project.critical_plausibility)[0]:
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
    (``labelloop.loop`` wires QA and gold scoring to these flags). ``replayed``: the answer
    was already stored under the same idempotency key, and nothing changed."""

    annotation: Annotation
    project: Project
    batch: Batch
    batch_complete: bool
    gold: bool
    replayed: bool = False
    created: bool = True


@dataclass(frozen=True)
class Answer:
    """An annotator's answer to a task: a label (submitted or a draft), or a skip."""

    label: str | None = None
    status: AnswerStatus = AnswerStatus.SUBMITTED
    skip_reason: str | None = None
    seconds_spent: float | None = None
    idempotency_key: str | None = None
    unsure: bool = False  # the annotator's doubt: the reviewer queue lists the item


def submit(session: Session, task_id: int, annotator: str, label: str | None = None,
           seconds_spent: float | None = None, *, answer: Answer | None = None,
           project: Project | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Submission:
    """Record (or change) one answer and close the task when enough people answered.

    ``answer`` carries the status (submitted, draft or skipped with a reason) and an
    optional idempotency key: a retry with the same key returns the first result. An
    annotator may change their answer until the batch closes. An answer that disagrees with
    the pre-label of an audit or calibration task asks for ``ADJUDICATION_VOTES`` answers
    in all (at most as many as the project has annotators). With ``project`` given, a task
    of another project is "not found"."""
    annotator = _check_annotator(annotator)
    answer = answer or Answer(label=label, seconds_spent=seconds_spent)
    if answer.idempotency_key is not None:
        earlier = session.scalar(select(Annotation).where(
            Annotation.annotator == annotator,
            Annotation.idempotency_key == answer.idempotency_key))
        if earlier is not None:
            return _replay(session, earlier, task_id, answer)
    found = session.execute(select(Task, Item.split).join(Item, Item.id == Task.item_id)
                            .where(Task.id == task_id)
                            .with_for_update(of=Task, key_share=True)).first()
    task, split = found if found is not None else (None, None)
    if task is None or (project is not None and task.batch.project_id != project.id):
        raise NotFoundError(f"no task {task_id}", where="task_id")
    batch = task.batch
    project = session.get(Project, batch.project_id)
    assert project is not None
    _check_answer(project, answer)
    _check_active(session, project, annotator)
    if batch.status != BatchStatus.OPEN:
        raise ConflictError(f"task {task_id} is closed (its batch is {batch.status})",
                            where="task_id")
    mine = session.execute(
        select(Assignment, Annotation).outerjoin(Annotation, and_(
            Annotation.task_id == Assignment.task_id, Annotation.annotator == annotator))
        .where(Assignment.task_id == task.id, Assignment.annotator == annotator)).first()
    assignment, existing = mine if mine is not None else (None, None)
    retaken = (existing is not None and existing.status == AnswerStatus.SKIPPED
               and answer.status == AnswerStatus.SUBMITTED)  # an undone skip
    if existing is not None and existing.status != AnswerStatus.DRAFT and not retaken:
        return _change(session, project, batch, task, existing, answer)
    if task.status != TaskStatus.OPEN:
        raise ConflictError(f"task {task_id} is closed", where="task_id")
    if assignment is None or assignment.status == AssignmentStatus.SKIPPED:
        cutoff = utcnow() - timedelta(seconds=timeout_s)
        n = session.scalar(_holders(task.id, cutoff)) or 0
        if n >= task.required:
            raise ConflictError(f"task {task_id} already has its {task.required} annotators",
                                where="task_id")
        if assignment is None:
            assignment = Assignment(task_id=task.id, annotator=annotator)
            session.add(assignment)
    annotation = existing or Annotation(task_id=task.id, item_id=task.item_id,
                                        annotator=annotator)
    _fill(annotation, task, project, answer)
    session.add(annotation)
    if answer.status == AnswerStatus.SUBMITTED:
        assignment.status, assignment.submitted_at = AssignmentStatus.SUBMITTED, utcnow()
    elif answer.status == AnswerStatus.SKIPPED:
        assignment.status = AssignmentStatus.SKIPPED  # the place goes to someone else
    session.flush()
    closed = (answer.status == AnswerStatus.SUBMITTED
              and _close_task_if_answered(session, project, task, answer.label))
    # only the answer that closes a task can complete its batch
    return Submission(annotation, project, batch,
                      batch_complete=closed and is_complete(session, batch),
                      gold=split == GOLD_SPLIT and answer.status == AnswerStatus.SUBMITTED)


def _check_answer(project: Project, answer: Answer) -> None:
    if answer.status == AnswerStatus.SKIPPED:
        if not (answer.skip_reason or "").strip():
            raise ValidationError("a skip needs a reason", where="skip_reason")
        check_text(answer.skip_reason or "", "skip_reason")
    elif answer.label not in project.labels:
        raise ValidationError(f"unknown label {shorten(answer.label)!r} for project "
                              f"{shorten(project.name)!r}", where="label")
    if answer.seconds_spent is not None and not 0 <= answer.seconds_spent < 1e7:
        raise ValidationError("seconds_spent must lie in [0, 1e7)", where="seconds_spent")


def _fill(annotation: Annotation, task: Task, project: Project, answer: Answer) -> None:
    skipped = answer.status == AnswerStatus.SKIPPED
    annotation.label = None if skipped else answer.label
    annotation.value = {} if skipped else {"label": answer.label}
    annotation.status = answer.status
    annotation.skip_reason = answer.skip_reason if skipped else None
    annotation.unsure = answer.unsure
    annotation.seconds_spent = answer.seconds_spent
    annotation.accepted_prelabel = (not skipped and answer.label == task.prelabel)
    annotation.guideline_version = project.guideline_version
    annotation.idempotency_key = answer.idempotency_key or annotation.idempotency_key
    annotation.updated_at = utcnow()


def _change(session: Session, project: Project, batch: Batch, task: Task,
            existing: Annotation, answer: Answer) -> Submission:
    """A second answer from the same person to the same task: a new label for a submitted
    answer (the batch is still open), nothing else."""
    if existing.status == AnswerStatus.SKIPPED or answer.status != AnswerStatus.SUBMITTED:
        raise ConflictError(f"task {task.id} was already {existing.status.value}; only a "
                            "submitted label can be changed, to another label",
                            where="task_id")
    _fill(existing, task, project, answer)
    session.flush()
    return Submission(existing, project, batch, batch_complete=False, gold=False,
                      created=False)


def _replay(session: Session, earlier: Annotation, task_id: int, answer: Answer,
            ) -> Submission:
    if earlier.task_id != task_id:
        raise ConflictError(f"idempotency key {shorten(answer.idempotency_key)!r} was used "
                            f"for task {earlier.task_id}", where="Idempotency-Key")
    task = session.get(Task, earlier.task_id)
    assert task is not None
    project = session.get(Project, task.batch.project_id)
    assert project is not None
    return Submission(earlier, project, task.batch, batch_complete=False, gold=False,
                      replayed=True, created=False)


def _close_task_if_answered(session: Session, project: Project, task: Task,
                            label: str | None) -> bool:
    """Close ``task`` once it has its answers (asking for more first on a disputed audit or
    safety-critical task); True if it closed."""
    answers = list(session.scalars(select(Annotation.label).where(
        Annotation.task_id == task.id, Annotation.status == AnswerStatus.SUBMITTED)))
    disputed_critical = len(set(answers)) > 1 and bool(set(answers) & set(
        project.critical_labels))
    if task.required < ADJUDICATION_VOTES and (
            (task.reason in ADJUDICATED_REASONS and label != task.prelabel)
            or disputed_critical):  # a safety-critical disagreement asks one more person
        task.required = max(task.required, min(ADJUDICATION_VOTES,
                                               _n_annotators(session, project)))
    if len(answers) < task.required:
        return False
    task.status = TaskStatus.DONE
    session.flush()
    return True


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
