"""Suspected label errors in the loop, and sending items back for re-review.

Confident learning (``quality.label_errors``) runs on out-of-fold logistic-regression
probabilities over the cached MiniLM embeddings of every item with a current label (a final
label from a batch or from auto-accept, or a label that arrived with the data). Suspects are
ranked most doubtful first; :func:`send_for_rereview` turns items into a ``re-review`` batch
whose answers replace their labels when it passes its gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.core.settings import Settings
from labelloop.prelabel.cache import embed_items, load_embeddings
from labelloop.prelabel.service import encoder_for
from labelloop.quality.label_errors import find_label_issues, out_of_fold_probs
from labelloop.store.models import Batch, FinalLabel, Item, ModelVersion, Project, Task

REREVIEW = "re-review"  # the strategy of a re-review batch and the reason on its tasks
MIN_ITEMS = 10  # fewer labeled items say nothing about which labels are wrong


@dataclass(frozen=True)
class Labeled:
    """A pool item's current label and where it came from."""

    item: Item
    label: str
    origin: str  # human | auto | reviewed | given
    batch_id: int | None


@dataclass(frozen=True)
class Suspect:
    item_id: int
    text: str
    label: str
    suggested: str
    label_probability: float
    suggested_probability: float
    origin: str
    batch_id: int | None


def labeled_items(session: Session, project: Project) -> list[Labeled]:
    """Pool items with a current label, in item order: the final label where there is one,
    else the label the item arrived with."""
    out = []
    for item, final in session.execute(
            select(Item, FinalLabel).outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
            .where(Item.project_id == project.id, Item.split == "pool")
            .order_by(Item.id)):
        if final is not None:
            out.append(Labeled(item, final.label, final.origin, final.batch_id))
        elif item.given_label is not None:
            out.append(Labeled(item, item.given_label, "given", None))
    return out


def scan_labels(vectors: np.ndarray, labels: list[str], label_names: list[str],
                ) -> tuple[np.ndarray, np.ndarray]:
    """Suspected errors among ``labels``: (indices most suspect first, out-of-fold
    probabilities ``(n, len(label_names))``). ``vectors``: ``(n, dim)`` embeddings."""
    index = {lb: i for i, lb in enumerate(label_names)}
    y = np.array([index[lb] for lb in labels], dtype=np.int64)
    counts = np.bincount(y, minlength=len(label_names))
    # every training fold must hold two classes: two labels with two items each ensure it
    if y.size < MIN_ITEMS or np.count_nonzero(counts >= 2) < 2:
        raise ValidationError(f"label-error detection needs at least {MIN_ITEMS} labeled items, "
                              f"two labels with two items each; there are {y.size} in "
                              f"{np.count_nonzero(counts)} labels", where="project")
    probs = out_of_fold_probs(vectors, y, n_folds=int(min(5, counts.max())))
    full = np.zeros((y.size, len(label_names)))
    full[:, :probs.shape[1]] = probs
    return find_label_issues(y, full), full


def suspect_label_errors(session: Session, project: Project, settings: Settings,
                         top: int = 50, *, rereview: bool = False) -> dict[str, Any]:
    """Ranked suspected label errors among the project's labeled items.

    Returns ``n_items`` scanned, ``n_suspects``, ``error_rate`` (their share) and the
    ``top`` suspects. With ``rereview``, those of the ``top`` not already in an open task go
    to a new re-review batch (``rereview_batch_id``).
    """
    if top < 1:
        raise ValidationError(f"top must be at least 1, got {top}", where="top")
    rows = labeled_items(session, project)
    vectors = embed_items(session, [r.item for r in rows], encoder_for(settings),
                          batch_size=settings.embed_batch_size)
    issues, probs = scan_labels(vectors, [r.label for r in rows], list(project.labels))
    suspects = [_suspect(rows[i], probs[i], project) for i in issues[:top]]
    batch_id = None
    if rereview and suspects:
        busy = _in_open_tasks(session, [s.item_id for s in suspects])
        fresh = [s.item_id for s in suspects if s.item_id not in busy]
        batch_id = send_for_rereview(session, project, fresh).id if fresh else None
    return {"n_items": len(rows), "n_suspects": int(issues.size),
            "error_rate": issues.size / len(rows), "suspects": [asdict(s) for s in suspects],
            "rereview_batch_id": batch_id}


def _suspect(row: Labeled, p: np.ndarray, project: Project) -> Suspect:
    k = int(np.argmax(p))
    given = project.labels.index(row.label)
    return Suspect(row.item.id, row.item.text, row.label, project.labels[k],
                   round(float(p[given]), 4), round(float(p[k]), 4), row.origin, row.batch_id)


def batch_label_error_rate(session: Session, project: Project,
                           batch: Batch) -> dict[str, Any] | None:
    """Share of ``batch``'s labeled items that the project-wide scan suspects, on cached
    embeddings only (QA must not load an encoder). ``None`` when nothing can be scanned."""
    model_id = batch.model_version_id or project.active_model_id
    model = session.get(ModelVersion, model_id) if model_id else None
    if model is None:
        return None
    rows = labeled_items(session, project)
    cached = load_embeddings(session, [r.item.id for r in rows], model.encoder)
    rows = [r for r in rows if r.item.id in cached]
    mine = [i for i, r in enumerate(rows) if r.batch_id == batch.id]
    if not mine:
        return None
    try:
        issues, _ = scan_labels(np.stack([cached[r.item.id] for r in rows]),
                                [r.label for r in rows], list(project.labels))
    except ValidationError:
        return None  # too few labels yet to judge
    suspects = [rows[i].item.id for i in issues if rows[i].batch_id == batch.id]
    return {"rate": len(suspects) / len(mine), "n_items": len(mine), "n_scanned": len(rows),
            "n_suspects": len(suspects), "suspect_item_ids": suspects[:50]}


def send_for_rereview(session: Session, project: Project, item_ids: list[int] | None = None,
                      *, batch_id: int | None = None, required: int | None = None) -> Batch:
    """A new batch (strategy and task reason ``re-review``) asking people again about
    ``item_ids``, or about every labeled item of batch ``batch_id``.

    Each task shows the item's current label as its pre-label (accept or correct) and needs
    ``required`` answers (default: the project's overlap). Items must be labeled pool items
    of the project that are in no open task. When the batch passes its gate, its labels
    replace the old ones.
    """
    ids = _rereview_ids(session, project, item_ids, batch_id)
    if required is not None and not 1 <= required <= 10:
        raise ValidationError(f"required must lie in [1, 10], got {required}",
                              where="required")
    current = {r.item.id: r.label for r in labeled_items(session, project)}
    items = {it.id: it for it in session.scalars(select(Item).where(Item.id.in_(ids)))}
    for item_id in ids:
        item = items.get(item_id)
        if item is None or item.project_id != project.id:
            raise NotFoundError(f"no item {item_id} in project {project.name!r}",
                                where="item_ids")
        if item_id not in current:
            raise ValidationError(f"item {item_id} has no label to re-review ({item.split})",
                                  where="item_ids")
    busy = _in_open_tasks(session, ids)
    if busy:
        raise ConflictError(f"items already in an open task: {sorted(busy)[:10]}",
                            where="item_ids")
    batch = Batch(project_id=project.id, strategy=REREVIEW,
                  model_version_id=project.active_model_id,
                  guideline_version=project.guideline_version)
    session.add(batch)
    session.flush()
    session.add_all(Task(batch_id=batch.id, item_id=item_id, reason=REREVIEW,
                         required=required or project.overlap, prelabel=current[item_id],
                         prelabel_confidence=None, score=float(-rank))
                    for rank, item_id in enumerate(ids))
    session.flush()
    return batch


def _rereview_ids(session: Session, project: Project, item_ids: list[int] | None,
                  batch_id: int | None) -> list[int]:
    if (item_ids is None) == (batch_id is None):
        raise ValidationError("give either item_ids or batch_id", where="item_ids")
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.project_id != project.id:
            raise NotFoundError(f"no batch {batch_id} in project {project.name!r}",
                                where="batch_id")
        item_ids = list(session.scalars(select(FinalLabel.item_id).where(
            FinalLabel.batch_id == batch_id).order_by(FinalLabel.item_id)))
    ids = list(dict.fromkeys(item_ids or []))  # first occurrence of each, in order
    if not ids:
        raise ValidationError("no items to re-review", where="item_ids")
    return ids


def _in_open_tasks(session: Session, item_ids: list[int]) -> set[int]:
    return set(session.scalars(select(Task.item_id).where(
        Task.item_id.in_(item_ids), Task.status == "open")))
