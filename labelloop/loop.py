"""Where one stage's event sets off another's work: the loop's wiring, in one place.

Stages never call back up: ``annotate`` only says that an answer completed a batch or was
on a gold item; this module runs the QA and the re-scoring that follow. Every shell (API,
CLI, demo, web pages) submits answers through here.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from labelloop.annotate.service import DEFAULT_TIMEOUT_S, Answer, Submission, submit
from labelloop.quality.annotators import flag_annotators
from labelloop.quality.service import close_batch
from labelloop.store.models import Batch, Project


def submit_answer(session: Session, task_id: int, annotator: str, label: str | None = None,
                  seconds_spent: float | None = None, *, answer: Answer | None = None,
                  project: Project | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S,
                  qa: Callable[[Session, Batch], None] | None = None) -> Submission:
    """Record an answer; when it completes its batch, run QA and the gate, here or by
    ``qa(session, batch)`` (the server queues a job: QA with its bootstrap and label-error
    scan takes seconds the annotator should not wait for); when it was on a gold item,
    re-score the annotator (who may be flagged, their open tasks released)."""
    done = submit(session, task_id, annotator, label, seconds_spent, answer=answer,
                  project=project, timeout_s=timeout_s)
    if done.batch_complete:
        (qa or close_batch)(session, done.batch)
    if done.gold:
        flag_annotators(session, done.project, [annotator])
    return done
