"""Lineage you can ask, both ways, and what changed between two versions.

- ``model_lineage``: a model -> its training and evaluation versions -> what their rows came
  from: batches, annotators, guideline versions, pre-label models, sources and origins;
  ``model_items`` pages through the rows themselves with the label event behind each.
- ``item_lineage``: an item -> its source, its whole label history and answers, every
  version it is in and every model those versions trained or evaluated.
- ``diff_versions``: added, removed and relabeled items, each with who and why.
- ``lineage_completeness``: the share of a version's rows whose provenance is whole, from
  source to label event (and to the MLflow run, for a model).

The queries filter on ``dataset_rows``' provenance columns (written by ``freeze_version``)
and join the label events; the per-row JSON stays the export's copy.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.errors import NotFoundError, ValidationError
from labelloop.store.models import (
    Annotation,
    Batch,
    DatasetRow,
    DatasetVersion,
    IngestBatch,
    Item,
    LabelEvent,
    ModelVersion,
    Project,
    Task,
)
from labelloop.store.pages import MAX_PAGE, Page

MAX_LISTED = 100  # items named per kind of change in a diff (the counts are exact)


def get_model(session: Session, project: Project, model_id: int) -> ModelVersion:
    model = session.get(ModelVersion, model_id) if 0 < model_id < 2**63 else None
    if model is None or model.project_id != project.id:
        raise NotFoundError(f"no model {model_id} in project {project.name!r}", where="model")
    return model


def _version_row(v: DatasetVersion) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "split": v.split, "digest": v.digest,
            "n_rows": v.n_rows, "created_at": v.created_at}


def version_provenance(session: Session, version: DatasetVersion) -> dict[str, Any]:
    """Where a version's rows came from, counted: origins, batches (with their gate status
    and guideline version), annotators, guideline versions, pre-label models, sources."""
    rows = DatasetRow.version_id == version.id

    def counted(column: Any) -> dict[Any, int]:
        return {k: n for k, n in session.execute(
            select(column, func.count()).where(rows).group_by(column))}

    batches = counted(DatasetRow.batch_id)
    batch_rows = {b.id: b for b in session.scalars(select(Batch).where(
        Batch.id.in_([b for b in batches if b is not None])))}
    models = counted(DatasetRow.prelabel_model_id)
    names = {m.id: m.name for m in session.scalars(select(ModelVersion).where(
        ModelVersion.id.in_([m for m in models if m is not None])))}
    sources = {(ib, src): n for ib, src, n in session.execute(
        select(Item.ingest_batch_id, IngestBatch.source, func.count())
        .join(DatasetRow, DatasetRow.item_id == Item.id)
        .outerjoin(IngestBatch, IngestBatch.id == Item.ingest_batch_id)
        .where(rows).group_by(Item.ingest_batch_id, IngestBatch.source))}
    annotators: Counter[str] = Counter()
    for names_ in session.scalars(select(LabelEvent.annotators).join(
            DatasetRow, DatasetRow.label_event_id == LabelEvent.id).where(rows)):
        annotators.update(names_ or [])
    return {
        "version": _version_row(version),
        "origins": {str(k): n for k, n in counted(DatasetRow.origin).items()},
        "batches": [{"batch_id": b, "n_rows": n,
                     "status": str(batch_rows[b].status) if b in batch_rows else None,
                     "guideline_version": (batch_rows[b].guideline_version
                                           if b in batch_rows else None),
                     "strategy": batch_rows[b].strategy if b in batch_rows else None}
                    for b, n in sorted(batches.items(), key=lambda kv: kv[0] or 0)
                    if b is not None],
        "annotators": dict(sorted(annotators.items())),
        "guideline_versions": {str(k): n for k, n in sorted(
            counted(DatasetRow.guideline_version).items(), key=lambda kv: kv[0] or 0)
            if k is not None},
        "prelabel_models": [{"model_id": m, "name": names.get(m), "n_rows": n}
                            for m, n in sorted(models.items(), key=lambda kv: kv[0] or 0)
                            if m is not None],
        "sources": [{"ingest_batch_id": ib, "source": src, "n_rows": n}
                    for (ib, src), n in sorted(sources.items(), key=lambda kv: kv[0][0] or 0)],
        "completeness": lineage_completeness(session, version),
    }


def model_lineage(session: Session, project: Project, model: ModelVersion) -> dict[str, Any]:
    """A model -> its training and evaluation versions -> the provenance of their rows, and
    whether the two versions share an item (they must not)."""
    train = session.get(DatasetVersion, model.train_version_id) \
        if model.train_version_id else None
    evaluation = session.get(DatasetVersion, model.eval_version_id) \
        if model.eval_version_id else None
    shared = 0
    if train is not None and evaluation is not None:
        other = select(DatasetRow.item_id).where(DatasetRow.version_id == evaluation.id)
        shared = session.scalar(select(func.count()).select_from(DatasetRow).where(
            DatasetRow.version_id == train.id, DatasetRow.item_id.in_(other))) or 0
    return {
        "model": {"id": model.id, "name": model.name, "kind": model.kind,
                  "encoder": model.encoder, "mlflow_run_id": model.mlflow_run_id,
                  "registered_name": model.registered_name,
                  "registered_version": model.registered_version,
                  "created_at": model.created_at, "metrics": {
                      k: model.metrics.get(k) for k in ("accuracy", "macro_f1", "n_train")
                      if k in model.metrics}},
        "train": version_provenance(session, train) if train is not None else None,
        "evaluation": version_provenance(session, evaluation)
        if evaluation is not None else None,
        "train_eval_shared_items": shared,
        "lineage_completeness": (lineage_completeness(session, train, model)["share"]
                                 if train is not None else None),
    }


def model_items(session: Session, project: Project, model: ModelVersion, *,
                split: str = "train", annotator: str | None = None,
                batch_id: int | None = None, guideline_version: int | None = None,
                origin: str | None = None, label: str | None = None, after: int = 0,
                limit: int = 50) -> Page:
    """The rows that fed ``model`` (its ``split`` version), each with the label event that
    gave it its label, filtered by who, which batch, guideline version, origin or label;
    paged by item id (``after``)."""
    if split not in ("train", "eval"):
        raise ValidationError(f"split must be train or eval, got {split!r}", where="split")
    version_id = model.train_version_id if split == "train" else model.eval_version_id
    if version_id is None:
        raise NotFoundError(f"model {model.id} has no {split} version", where="split")
    where = [DatasetRow.version_id == version_id]
    if batch_id is not None:
        where.append(DatasetRow.batch_id == batch_id)
    if guideline_version is not None:
        where.append(DatasetRow.guideline_version == guideline_version)
    if origin is not None:
        where.append(DatasetRow.origin == origin)
    if label is not None:
        where.append(DatasetRow.label == label)
    if annotator is not None:
        # who labeled it: an answer of theirs on the item, in the row's batch
        where.append(select(Annotation.id).join(Task, Task.id == Annotation.task_id).where(
            Annotation.item_id == DatasetRow.item_id, Annotation.annotator == annotator,
            Task.batch_id == DatasetRow.batch_id).exists())
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must lie in [1, {MAX_PAGE}], got {limit}", where="limit")
    count = session.scalar(select(func.count()).select_from(DatasetRow).where(*where)) or 0
    found = session.execute(
        select(DatasetRow, LabelEvent, Item.text)
        .join(Item, Item.id == DatasetRow.item_id)
        .outerjoin(LabelEvent, LabelEvent.id == DatasetRow.label_event_id)
        .where(*where, DatasetRow.item_id > after)
        .order_by(DatasetRow.item_id).limit(limit + 1)).tuples().all()
    more = len(found) > limit
    return Page(count, [_row_out(row, event, text) for row, event, text in found[:limit]],
                found[limit - 1][0].item_id if more else None)


def _event_out(event: LabelEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {"event_id": event.id, "at": event.at, "by": event.by, "reason": str(event.reason),
            "from_label": event.from_label, "to_label": event.to_label,
            "origin": str(event.origin) if event.origin else None,
            "batch_id": event.batch_id, "annotators": event.annotators,
            "agreement": event.agreement, "guideline_version": event.guideline_version,
            "prelabel_model_id": event.model_version_id, "note": event.note}


def _row_out(row: DatasetRow, event: LabelEvent | None, text: str) -> dict[str, Any]:
    return {"item_id": row.item_id, "text": text, "label": row.label, "origin": row.origin,
            "batch_id": row.batch_id, "guideline_version": row.guideline_version,
            "prelabel_model_id": row.prelabel_model_id, "event": _event_out(event)}


def item_lineage(session: Session, project: Project, item_id: int) -> dict[str, Any]:
    """An item -> its source, label history, answers, every version it is in and every
    model those versions trained or evaluated."""
    item = session.get(Item, item_id) if 0 < item_id < 2**63 else None
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"no item {item_id} in project {project.name!r}", where="item")
    source = session.get(IngestBatch, item.ingest_batch_id) if item.ingest_batch_id else None
    events = session.scalars(select(LabelEvent).where(LabelEvent.item_id == item.id)
                             .order_by(LabelEvent.id)).all()
    answers = session.scalars(select(Annotation).where(Annotation.item_id == item.id)
                              .order_by(Annotation.id)).all()
    in_versions = session.execute(
        select(DatasetVersion, DatasetRow.label, DatasetRow.label_event_id)
        .join(DatasetRow, DatasetRow.version_id == DatasetVersion.id)
        .where(DatasetRow.item_id == item.id).order_by(DatasetVersion.id)).all()
    ids = [v.id for v, _, _ in in_versions]
    models = session.scalars(select(ModelVersion).where(
        ModelVersion.project_id == project.id,
        ModelVersion.train_version_id.in_(ids) | ModelVersion.eval_version_id.in_(ids))
        .order_by(ModelVersion.id)).all() if ids else []
    return {
        "item": {"id": item.id, "split": item.split, "source": item.source,
                 "source_row": item.source_row, "external_id": item.external_id,
                 "content_hash": item.content_hash, "licence": item.licence,
                 "given_label": item.given_label,
                 "ingest_batch": {"id": source.id, "source": source.source,
                                  "digest": source.source_digest,
                                  "created_at": source.created_at} if source else None},
        "label_history": [_event_out(e) for e in events],
        "answers": [{"annotator": a.annotator, "label": a.label, "status": str(a.status),
                     "task_id": a.task_id, "guideline_version": a.guideline_version,
                     "accepted_prelabel": a.accepted_prelabel, "at": a.created_at,
                     "updated_at": a.updated_at} for a in answers],
        "versions": [{**_version_row(v), "label": label, "label_event_id": event_id}
                     for v, label, event_id in in_versions],
        "models": [{"id": m.id, "name": m.name, "mlflow_run_id": m.mlflow_run_id,
                    "as": "train" if m.train_version_id in ids else "evaluation"}
                   for m in models],
    }


def diff_versions(session: Session, old: DatasetVersion, new: DatasetVersion,
                  ) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: items added, removed and relabeled (counts, and
    up to ``MAX_LISTED`` of each with the label event behind the change: who and why)."""
    if old.project_id != new.project_id:
        raise ValidationError("the two versions belong to different projects",
                              where="version")
    a = dict(session.execute(select(DatasetRow.item_id, DatasetRow.label)
                             .where(DatasetRow.version_id == old.id)).tuples().all())
    b_rows = {r.item_id: r for r in session.scalars(
        select(DatasetRow).where(DatasetRow.version_id == new.id))}
    added = sorted(b_rows.keys() - a.keys())
    removed = sorted(a.keys() - b_rows.keys())
    relabeled = sorted(i for i in a.keys() & b_rows.keys() if a[i] != b_rows[i].label)
    wanted = [b_rows[i].label_event_id for i in added[:MAX_LISTED] + relabeled[:MAX_LISTED]]
    events = {e.id: e for e in session.scalars(select(LabelEvent).where(
        LabelEvent.id.in_([w for w in wanted if w is not None])))}

    def why(item_id: int) -> dict[str, Any] | None:
        return _event_out(events.get(b_rows[item_id].label_event_id or -1))

    return {
        "old": _version_row(old), "new": _version_row(new),
        "added": len(added), "removed": len(removed), "relabeled": len(relabeled),
        "added_items": [{"item_id": i, "label": b_rows[i].label, "why": why(i)}
                        for i in added[:MAX_LISTED]],
        "removed_items": [{"item_id": i, "label": a[i]} for i in removed[:MAX_LISTED]],
        "relabeled_items": [{"item_id": i, "from": a[i], "to": b_rows[i].label,
                             "why": why(i)} for i in relabeled[:MAX_LISTED]],
    }


def lineage_completeness(session: Session, version: DatasetVersion,
                         model: ModelVersion | None = None) -> dict[str, Any]:
    """The share of ``version``'s rows whose provenance is whole: the item's source (an
    ingest batch) and, unless the label came with the data, the label event that gave it,
    naming who (annotators, or the pre-label model for an auto-accepted label) and, for a
    human label, its batch. With ``model``, the model's MLflow run must be known too.
    Returns the share and, per missing link, how many rows lack it."""
    rows = session.execute(
        select(DatasetRow.origin, DatasetRow.label_event_id, DatasetRow.batch_id,
               DatasetRow.prelabel_model_id, Item.ingest_batch_id, LabelEvent.id,
               LabelEvent.annotators, LabelEvent.model_version_id)
        .join(Item, Item.id == DatasetRow.item_id)
        .outerjoin(LabelEvent, LabelEvent.id == DatasetRow.label_event_id)
        .where(DatasetRow.version_id == version.id))
    missing: Counter[str] = Counter()
    n = complete = 0
    run_known = model is None or bool(model.mlflow_run_id)
    for origin, event_id, batch_id, _pre, ingest_batch, found, annotators, auto_model in rows:
        n += 1
        gaps = []
        if ingest_batch is None:
            gaps.append("source")
        if origin != "given":
            if event_id is None or found is None:
                gaps.append("label_event")
            elif origin == "auto" and auto_model is None:
                gaps.append("model")
            elif origin != "auto" and not annotators:
                gaps.append("annotators")
            if origin not in ("auto", "given") and batch_id is None and \
                    "label_event" not in gaps:
                gaps.append("batch")
        if not run_known:
            gaps.append("run")
        missing.update(gaps)
        complete += not gaps
    return {"n_rows": n, "n_complete": complete, "share": complete / n if n else None,
            "missing": dict(missing)}
