"""Gold items in the loop: bring them in, and read every answer given on them.

A gold item is an item of split ``gold`` whose ``given_label`` is an expert's label.
``annotate.service`` mixes gold tasks into each annotator's stream, unannounced; the answers
score the annotator (``quality.annotators``) and the batch (``quality.service``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from labelloop.annotate.service import GOLD_SPLIT
from labelloop.core.enums import AnswerStatus
from labelloop.core.errors import ValidationError
from labelloop.core.settings import Settings
from labelloop.ingest.service import IngestReport, ingest_file
from labelloop.prelabel.service import prelabel_project
from labelloop.store.models import Annotation, Annotator, Batch, Item, Project, Task


@dataclass(frozen=True)
class GoldAnswer:
    annotator: str
    label: str  # what the annotator answered
    gold: str  # the expert label
    batch_id: int
    guideline_version: int
    created_at: datetime


def ingest_gold(session: Session, project: Project, settings: Settings, path: str | Path, *,
                text_field: str = "text", label_field: str | None = "label",
                id_field: str | None = "id", licence: str | None = None,
                source_name: str | None = None) -> IngestReport:
    """Ingest expert-labeled items as gold, and pre-label them with the active model so
    that their tasks look like every other task.

    Every accepted row needs a label: one without raises ``ValidationError`` naming the
    rows (the caller's session rolls back, so nothing is kept). A row whose text the
    project already holds is a duplicate and does not become gold.
    """
    if not label_field:
        raise ValidationError("gold items need a label field", where="label_field")
    report = ingest_file(session, project, path, text_field=text_field,
                         label_field=label_field, id_field=id_field, split=GOLD_SPLIT,
                         licence=licence, source_name=source_name,
                         max_chars=settings.max_text_chars)
    unlabeled = sorted(session.scalars(select(Item.source_row).where(
        Item.ingest_batch_id == report.ingest_batch_id, Item.given_label.is_(None))))
    if unlabeled:
        raise ValidationError(f"gold rows need an expert label in {label_field!r}; rows "
                              f"{unlabeled[:10]} have none", where=label_field)
    prelabel_project(session, project, settings, splits=(GOLD_SPLIT,))
    return report


def gold_answers(session: Session, project: Project, annotators: Sequence[str] | None = None,
                 *, current_only: bool = False) -> list[GoldAnswer]:
    """Every answer on a gold item in the project, oldest first. ``current_only``: only
    answers since each annotator was last reinstated (their record after recalibration)."""
    q = (select(Annotation, Item.given_label, Task.batch_id)
         .join(Task, Task.id == Annotation.task_id).join(Batch, Batch.id == Task.batch_id)
         .join(Item, Item.id == Annotation.item_id)
         .where(Batch.project_id == project.id, Item.split == GOLD_SPLIT,
                Item.given_label.is_not(None), Annotation.status == AnswerStatus.SUBMITTED)
         .order_by(Annotation.id))
    if annotators is not None:
        q = q.where(Annotation.annotator.in_(list(annotators)))
    if current_only:
        q = q.outerjoin(Annotator, and_(Annotator.project_id == project.id,
                                        Annotator.name == Annotation.annotator)).where(
            or_(Annotator.active_since.is_(None),
                Annotation.created_at >= Annotator.active_since))
    return [GoldAnswer(a.annotator, a.label, str(gold), batch_id, a.guideline_version, a.created_at)
            for a, gold, batch_id in session.execute(q)]
