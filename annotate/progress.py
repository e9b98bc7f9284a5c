"""What an annotator sees around a task: the batch's progress and the guideline's words for
the labels in play."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from labelloop.core.enums import AnswerStatus, AssignmentStatus, BatchStatus, TaskStatus
from labelloop.core.errors import NotFoundError
from labelloop.store.models import Annotation, Assignment, Batch, Project, Task


@dataclass
class BatchProgress:
    """One batch seen by one annotator: its tasks done of all, and the annotator's own
    answered, skipped and still held tasks with their median seconds per answer."""

    batch_id: int
    status: str
    n_tasks: int
    n_done: int
    mine_answered: int
    mine_skipped: int
    mine_held: int
    median_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_progress(session: Session, project: Project, annotator: str,
                   batch_id: int) -> BatchProgress:
    """``annotator``'s view of batch ``batch_id``'s progress (404 for another project's)."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.project_id != project.id:
        raise NotFoundError(f"no batch {batch_id} in this project", where="batch_id")
    n_tasks, n_done = session.execute(
        select(func.count(Task.id), func.count(case((Task.status == TaskStatus.DONE, 1))))
        .where(Task.batch_id == batch_id)).one()
    mine = dict(session.execute(
        select(Assignment.status, func.count(Assignment.id)).join(Task)
        .where(Task.batch_id == batch_id, Assignment.annotator == annotator)
        .group_by(Assignment.status)).all())
    seconds = [x for x in session.scalars(
        select(Annotation.seconds_spent).join(Task, Task.id == Annotation.task_id)
        .where(Task.batch_id == batch_id, Annotation.annotator == annotator,
               Annotation.status == AnswerStatus.SUBMITTED,
               Annotation.seconds_spent.is_not(None)))]
    return BatchProgress(batch_id, str(batch.status), int(n_tasks), int(n_done),
                         int(mine.get(AssignmentStatus.SUBMITTED, 0)),
                         int(mine.get(AssignmentStatus.SKIPPED, 0)),
                         int(mine.get(AssignmentStatus.OPEN, 0))
                         if batch.status == BatchStatus.OPEN else 0,
                         median(seconds) if seconds else None)


def guideline_excerpt(text: str, labels: list[str], limit: int = 4) -> list[str]:
    """The guideline's paragraphs (blank-line separated, else lines) that name one of
    ``labels`` (as written, or with spaces for underscores), best first: those naming the
    first label lead. With none naming them, the guideline's first paragraph.

    >>> guideline_excerpt("Intro.\\n\\nrefund: money back.\\n\\ncard_lost: block.",
    ...                   ["card_lost"])
    ['card_lost: block.']
    """
    return excerpt(guideline_paragraphs(text), labels, limit)


def guideline_paragraphs(text: str) -> list[str]:
    """The guideline's paragraphs: blank-line separated, else (one block) its lines."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) == 1:
        parts = [p.strip() for p in text.splitlines() if p.strip()] or parts
    return parts


def excerpt(parts: list[str], labels: list[str], limit: int = 4) -> list[str]:
    """``guideline_excerpt`` over paragraphs already split (a hand-out splits once)."""
    if not parts:
        return []
    forms = [{lb.lower(), lb.lower().replace("_", " "), lb.lower().replace("-", " ")}
             for lb in labels]

    def rank(part: str) -> int | None:
        low = part.lower()
        hits = [i for i, names in enumerate(forms) if any(n in low for n in names)]
        return min(hits) if hits else None

    ranked = sorted(((r, i, p) for i, p in enumerate(parts) if (r := rank(p)) is not None))
    return [p for _, _, p in ranked[:limit]] or parts[:1]
