"""What an annotator sees of a task: its text, the pre-label as a suggestion, why it came
to a person, the guideline's paragraphs on the labels in play, and (reopened) their own
answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from labelloop.annotate.progress import excerpt, guideline_paragraphs
from labelloop.core.enums import BatchStatus
from labelloop.core.errors import NotFoundError
from labelloop.core.names import check_name
from labelloop.store.models import (
    Annotation,
    Assignment,
    Batch,
    Item,
    ModelVersion,
    Prediction,
    Project,
    Task,
)

IN_PLAY = 3  # the model's top labels whose guideline paragraphs a task shows


@dataclass
class Suggestion:
    """A model's pre-label: its answer value, score and version, and its probabilities
    keyed by label name."""

    value: dict[str, Any]
    score: float
    model_version: str
    probs: dict[str, float]


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
    suggestion: Suggestion | None = None
    answer: dict[str, Any] | None = None  # the caller's own answer, when reopened (undo)
    guideline_excerpt: list[str] = field(default_factory=list)  # for the labels in play

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def suggested(preds: list[Prediction], model_version_id: int | None) -> Prediction | None:
    """The prediction a task shows: its batch's model's, else the item's newest (a gold
    task joins a batch its item was not selected into)."""
    for pred in preds:
        if pred.model_version_id == model_version_id:
            return pred
    return max(preds, key=lambda p: p.id, default=None)


def task_views(session: Session, project: Project, tasks: list[Task]) -> list[TaskView]:
    """What an annotator sees of ``tasks``: the text, the pre-label and its suggestion."""
    if not tasks:
        return []
    rows = session.execute(
        select(Task.id, Item.text, Batch.model_version_id, Prediction, ModelVersion.name)
        .join(Item, Item.id == Task.item_id).join(Batch, Batch.id == Task.batch_id)
        .outerjoin(Prediction, Prediction.item_id == Task.item_id)
        .outerjoin(ModelVersion, ModelVersion.id == Prediction.model_version_id)
        .where(Task.id.in_([t.id for t in tasks]))).all()
    texts, batch_model, preds, model_names = {}, {}, {}, {}
    for task_id, text, model_version_id, pred, model_name in rows:
        texts[task_id], batch_model[task_id] = text, model_version_id
        if pred is not None:
            preds.setdefault(task_id, []).append(pred)
            model_names[pred.model_version_id] = model_name
    paragraphs = guideline_paragraphs(project.guideline_text or "")  # once per hand-out
    views = []
    for t in tasks:
        pred = suggested(preds.get(t.id, []), batch_model[t.id])
        suggestion = None if pred is None else Suggestion(
            {"label": pred.label}, pred.confidence, model_names[pred.model_version_id],
            dict(pred.probs))
        in_play = [t.prelabel] if t.prelabel else []
        if pred is not None:  # the model's runners-up
            in_play += sorted(pred.probs, key=lambda lb: -pred.probs[lb])[:IN_PLAY]
        views.append(TaskView(t.id, t.batch_id, t.item_id, texts[t.id], t.prelabel,
                              t.prelabel_confidence, t.reason, list(project.labels),
                              project.guideline_version, suggestion, guideline_excerpt=
                              excerpt(paragraphs, list(dict.fromkeys(in_play)))))
    return views


def my_task(session: Session, project: Project, annotator: str, task_id: int) -> TaskView:
    """One task handed to ``annotator`` (answered or not), with their answer: what the
    workbench reopens to undo. Another person's task is "not found", as is a task of
    another project."""
    annotator = check_name(annotator or "", "annotator")
    found = session.execute(
        select(Task, Annotation).join(Batch, Batch.id == Task.batch_id)
        .join(Assignment, and_(Assignment.task_id == Task.id,
                               Assignment.annotator == annotator))
        .outerjoin(Annotation, and_(Annotation.task_id == Task.id,
                                    Annotation.annotator == annotator))
        .where(Task.id == task_id, Batch.project_id == project.id)).first()
    if found is None:
        raise NotFoundError(f"no task {task_id} of yours", where="task_id")
    task, mine = found
    view = task_views(session, project, [task])[0]
    if mine is not None:
        view.answer = {"label": mine.label, "status": mine.status.value,
                       "skip_reason": mine.skip_reason, "unsure": mine.unsure,
                       "batch_open": task.batch.status == BatchStatus.OPEN}
    return view
