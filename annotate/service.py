"""Annotators fetch tasks (with the pre-label) and submit accept-or-correct answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.errors import ConflictError, NotFoundError, ValidationError
from store.models import Annotation, Assignment, Batch, Item, Project, Task


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
    same task twice. Tasks come in batch order, most valuable first.
    """
    annotator = _check_annotator(annotator)
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}", where="limit")
    mine = list(session.scalars(
        select(Task).join(Assignment).join(Batch).where(
            Batch.project_id == project.id, Assignment.annotator == annotator,
            Assignment.status == "open").order_by(Task.batch_id, Task.score.desc()).limit(limit)))
    if len(mine) < limit:
        taken = select(Assignment.task_id).where(Assignment.annotator == annotator)
        n_assigned = (select(func.count(Assignment.id)).where(Assignment.task_id == Task.id)
                      .correlate(Task).scalar_subquery())
        fresh = session.scalars(
            select(Task).join(Batch).where(
                Batch.project_id == project.id, Batch.status == "open", Task.status == "open",
                Task.id.not_in(taken), n_assigned < Task.required)
            .order_by(Task.batch_id, Task.score.desc()).limit(limit - len(mine)))
        for task in fresh:
            session.add(Assignment(task_id=task.id, annotator=annotator))
            mine.append(task)
        session.flush()
    return [_view(session, project, t) for t in mine]


def _view(session: Session, project: Project, task: Task) -> TaskView:
    item = session.get(Item, task.item_id)
    assert item is not None  # foreign key
    return TaskView(task.id, task.batch_id, task.item_id, item.text, task.prelabel,
                    task.prelabel_confidence, task.reason, list(project.labels),
                    project.guideline_version)


def submit(session: Session, task_id: int, annotator: str, label: str,
           seconds_spent: float | None = None) -> Annotation:
    """Record one answer. Closes the task when enough people answered, and the batch (QA and
    its gate run then) when every task is closed."""
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
    n_done = session.scalar(select(func.count(Annotation.id)).where(
        Annotation.task_id == task.id)) or 0
    if n_done >= task.required:
        task.status = "done"
        session.flush()
        open_left = session.scalar(select(func.count(Task.id)).where(
            Task.batch_id == batch.id, Task.status == "open")) or 0
        if open_left == 0:
            from quality.service import close_batch  # QA runs when the batch completes

            close_batch(session, batch)
    return annotation
