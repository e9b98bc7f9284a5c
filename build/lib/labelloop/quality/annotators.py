"""Annotators' standing: flag for recalibration on gold accuracy, and reinstate.

An annotator is flagged when, on at least ``MIN_GOLD_ANSWERS`` gold answers, their accuracy
is below the project's ``gold_min_accuracy`` with confidence: the upper end of its Wilson
95% interval is below the bar too. The check runs after every gold answer, so a bare point
estimate would flag a good annotator after a few unlucky answers sooner or later. A flagged
annotator gets no tasks; their open ones go back to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.annotate.service import release_open_tasks
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.quality.gold import flag_for_recalibration, gold_scorecard
from labelloop.quality.gold_items import gold_answers
from labelloop.quality.service import close_batch
from labelloop.store.models import Annotator, Project, utcnow

MIN_GOLD_ANSWERS = 5


def flag_annotators(session: Session, project: Project,
                    annotators: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Flag every annotator (or those named) now below the gold bar and release their open
    tasks. Returns the newly flagged, each with the reason and the tasks released."""
    standing = {a.name: a for a in session.scalars(select(Annotator).where(
        Annotator.project_id == project.id))}
    answers = gold_answers(session, project, annotators, current_only=True)
    scores = gold_scorecard([a.annotator for a in answers], [a.label for a in answers],
                            [a.gold for a in answers], list(project.labels))
    bar = project.gold_min_accuracy
    flagged = []
    for name in flag_for_recalibration(scores, bar, MIN_GOLD_ANSWERS):
        score, row = scores[name], standing.get(name)
        if score.ci_high >= bar or (row is not None and row.status == "flagged"):
            continue
        row = row or Annotator(project_id=project.id, name=name)
        row.status, row.flagged_at = "flagged", utcnow()
        row.reason = (f"gold accuracy {score.accuracy:.2f} < {bar:.2f} on {score.n} gold "
                      f"answers (95% CI {score.ci_low:.2f}-{score.ci_high:.2f})")
        session.add(row)
        session.flush()
        released = release_open_tasks(session, project, name)
        for batch in released.complete:
            close_batch(session, batch)  # the released tasks were all it had left open
        flagged.append({"annotator": name, "reason": row.reason,
                        "released_tasks": released.n_tasks})
    return flagged


def reinstate_annotator(session: Session, project: Project, name: str, reviewer: str,
                        note: str = "") -> Annotator:
    """After recalibration a reviewer lets a flagged annotator work again; their gold
    record for flagging starts afresh (``active_since``)."""
    if not reviewer.strip():
        raise ValidationError("reviewer name is empty", where="reviewer")
    row = session.scalar(select(Annotator).where(Annotator.project_id == project.id,
                                                 Annotator.name == name))
    if row is None:
        raise NotFoundError(f"no annotator {name!r} on record in project {project.name!r}",
                            where="annotator")
    if row.status != "flagged":
        raise ConflictError(f"annotator {name!r} is {row.status}, not flagged",
                            where="annotator")
    row.status, row.active_since = "active", utcnow()
    row.reason = f"reinstated by {reviewer.strip()}" + (f": {note}" if note else "") + \
        f" (was flagged: {row.reason})"
    session.flush()
    return row
