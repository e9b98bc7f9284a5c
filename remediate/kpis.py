"""The loop's six KPIs, read from the store, and one figure of them.

1. ``agreement``: Krippendorff's alpha per closed batch (from its QA), the project's figure
   (mean weighted by tasks, and the latest) and answers' agreement with consensus;
2. ``gold``: accuracy on gold items, overall (Wilson 95% interval) and per annotator;
3. ``coverage``: each class's share of the labeled pool against its target share (the
   newest evaluation version's label distribution, else uniform), the under-covered
   classes, and the share of edge cases (the active model predicts a critical label, or
   its top-2 margin is thin) that a person labeled;
4. ``lineage``: ``versions.lineage.lineage_completeness`` of the newest training version,
   and of the active model's training version with the model's run;
5. ``cycle_time``: median seconds per stage (ingest -> pre-label -> selection ->
   annotation -> QA -> versioning -> training), the rework rate and the share of answers
   that corrected the pre-label;
6. ``remediation``: evaluation-to-remediation time of closed targets, targets by status.

Beside them, ``auto_accept``: the share of labeled pool items the model labeled alone, and
its audited accuracy (Clopper-Pearson 95%). Every figure is ``None`` (or an empty list)
where there is nothing to measure yet, never an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from statistics import mean, median
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from labelloop.core.enums import AnswerStatus, LabelOrigin, LabelReason, TargetStatus
from labelloop.prelabel.arrays import model_arrays
from labelloop.quality.gold import wilson_interval
from labelloop.quality.reports import CLOSED, rates, vote_records
from labelloop.remediate.savings import labels_saved
from labelloop.selection.auto_accept import audit_interval
from labelloop.store.models import (
    Annotation,
    Assignment,
    Batch,
    DatasetVersion,
    FinalLabel,
    Item,
    LabelEvent,
    ModelVersion,
    Prediction,
    Project,
    RemediationTarget,
    Task,
)
from labelloop.versions.lineage import lineage_completeness

POOL = "pool"
UNDER_COVERED = 0.5  # coverage below this names a class under-covered
EDGE_MARGIN = 0.1  # top-2 margin below this makes an item an edge case
HUMAN = ("human", "reviewed")  # origins of a label a person gave
REWORK = (LabelReason.REREVIEW, LabelReason.ADJUDICATION, LabelReason.REVERT)
MAX_MEASURED = 200_000  # pool items an item-level stage times at most (every k-th beyond)


def project_kpis(session: Session, project: Project, *, replay: bool = False,
                 ) -> dict[str, Any]:
    """The six KPIs and the auto-accept figures of ``project`` (see the module); with
    ``replay``, also ``labels_saved`` against random (``remediate.savings``: a simulation on
    the project's human labels, seconds to a minute, so only on request)."""
    batches = list(session.scalars(select(Batch).where(Batch.project_id == project.id)
                                   .order_by(Batch.id)))
    records = vote_records(session, project)
    finals = Counter({(label, origin): n for label, origin, n in session.execute(
        select(FinalLabel.label, FinalLabel.origin, func.count())
        .join(Item, Item.id == FinalLabel.item_id)
        .where(Item.project_id == project.id, Item.split == POOL)
        .group_by(FinalLabel.label, FinalLabel.origin))})
    return {"project": project.name,
            "agreement": agreement_kpi(batches, records),
            "gold": gold_kpi(records),
            "coverage": coverage_kpi(session, project, finals),
            "lineage": lineage_kpi(session, project),
            "cycle_time": cycle_time_kpi(session, project, batches),
            "remediation": remediation_kpi(session, project),
            "auto_accept": auto_accept_kpi(batches, finals),
            **({"labels_saved": labels_saved(session, project)} if replay else {})}


def agreement_kpi(batches: list[Batch], records: list[dict[str, Any]]) -> dict[str, Any]:
    per_batch_rates = rates(records, lambda r: r["batch"])
    closed = sorted((b for b in batches if b.status in CLOSED and b.closed_at is not None),
                    key=lambda b: (b.closed_at, b.id))
    per_batch = [{"batch_id": b.id, "status": str(b.status),
                  "closed_at": b.closed_at.isoformat() if b.closed_at else None,
                  "n_tasks": (b.qa or {}).get("n_tasks"),
                  "krippendorff_alpha": (b.qa or {}).get("krippendorff_alpha"),
                  "agreement_with_consensus": per_batch_rates.get(b.id, {}).get("agreement")}
                 for b in closed]
    measured = [r for r in per_batch if r["krippendorff_alpha"] is not None]
    weights = sum(r["n_tasks"] or 0 for r in measured)
    overall = rates(records, lambda r: "all").get("all", {})
    return {"per_batch": per_batch,
            "krippendorff_alpha": {
                "weighted": (sum(r["krippendorff_alpha"] * (r["n_tasks"] or 0)
                                 for r in measured) / weights) if weights else None,
                "latest": measured[-1]["krippendorff_alpha"] if measured else None,
                "n_batches": len(measured)},
            "agreement_with_consensus": overall.get("agreement"),
            "n_agreement": overall.get("n_agreement", 0)}


def gold_kpi(records: list[dict[str, Any]]) -> dict[str, Any]:
    gold = [r for r in records if r["correct"] is not None]
    correct = sum(r["correct"] for r in gold)
    per_annotator = rates(gold, lambda r: r["annotator"])
    return {"n": len(gold), "correct": correct,
            "accuracy": correct / len(gold) if gold else None,
            "ci95": list(wilson_interval(correct, len(gold))) if gold else None,
            "per_annotator": {str(name): {"n": row["n_gold"], "accuracy": row["gold_accuracy"]}
                              for name, row in sorted(per_annotator.items())}}


def coverage_kpi(session: Session, project: Project,
                 finals: Counter[tuple[str, str]]) -> dict[str, Any]:
    labels = [str(lb) for lb in project.labels]
    evaluation = session.scalar(select(DatasetVersion).where(
        DatasetVersion.project_id == project.id, DatasetVersion.split == "eval")
        .order_by(DatasetVersion.id.desc()).limit(1))
    wanted = {lb: float((evaluation.label_counts or {}).get(lb, 0)) for lb in labels} \
        if evaluation is not None else {}
    if sum(wanted.values()) <= 0:
        evaluation, wanted = None, dict.fromkeys(labels, 1.0)
    total_wanted = sum(wanted.values())
    counts: Counter[str] = Counter()
    for (label, _origin), n in finals.items():
        counts[label] += n
    n_labeled = sum(counts.values())
    per_class = []
    for lb in labels:
        target = wanted[lb] / total_wanted if total_wanted else None
        share = counts[lb] / n_labeled if n_labeled else None
        per_class.append({"label": lb, "n": counts[lb], "share": share, "target_share": target,
                          "coverage": share / target if share is not None and target else None})
    return {"target": {"source": "eval-version" if evaluation is not None else "uniform",
                       "version": evaluation.name if evaluation is not None else None},
            "n_labeled": n_labeled, "threshold": UNDER_COVERED, "per_class": per_class,
            "under_covered": [c["label"] for c in per_class
                              if c["coverage"] is not None and c["coverage"] < UNDER_COVERED],
            "edge_cases": edge_case_coverage(session, project)}


def edge_case_coverage(session: Session, project: Project) -> dict[str, Any] | None:
    """Of the pool items the pre-labeler predicts a critical label for, or with a top-2
    margin below ``EDGE_MARGIN``, the share a person labeled. The pre-labeler is the model
    that pre-labeled the newest batch (a model trained since has predicted nothing yet),
    else the active model. None without one or without predictions."""
    model_id = session.scalar(select(Batch.model_version_id).where(
        Batch.project_id == project.id, Batch.model_version_id.is_not(None))
        .order_by(Batch.id.desc()).limit(1)) or project.active_model_id
    model = session.get(ModelVersion, model_id) if model_id else None
    if model is None:
        return None
    labels = [str(lb) for lb in project.labels]
    arrays = model_arrays(session, model, labels)  # item_ids (n,), probs (n, k)
    pool = np.fromiter(session.scalars(select(Item.id).where(
        Item.project_id == project.id, Item.split == POOL)), dtype=np.int64)
    keep = np.isin(arrays.item_ids, pool)
    ids, probs = arrays.item_ids[keep], arrays.probs[keep]
    if len(ids) == 0:
        return None
    critical_idx = [labels.index(lb) for lb in project.critical_labels if lb in labels]
    critical = np.isin(probs.argmax(axis=1), critical_idx)
    if probs.shape[1] >= 2:
        top2 = -np.partition(-probs, 1, axis=1)[:, :2]
        thin = (top2[:, 0] - top2[:, 1]) < EDGE_MARGIN
    else:
        thin = np.zeros(len(ids), dtype=bool)
    edge = ids[critical | thin]
    human = np.fromiter(session.scalars(select(FinalLabel.item_id).join(
        Item, Item.id == FinalLabel.item_id).where(
        Item.project_id == project.id, Item.split == POOL, FinalLabel.origin.in_(HUMAN))),
        dtype=np.int64)
    n_human = int(np.isin(edge, human).sum())
    return {"model_id": model.id, "margin_below": EDGE_MARGIN, "n": len(edge),
            "n_critical": int(critical.sum()), "n_low_margin": int(thin.sum()),
            "n_human": n_human, "share": n_human / len(edge) if len(edge) else None}


def lineage_kpi(session: Session, project: Project) -> dict[str, Any]:
    train = session.scalar(select(DatasetVersion).where(
        DatasetVersion.project_id == project.id, DatasetVersion.split == "train")
        .order_by(DatasetVersion.id.desc()).limit(1))
    model = session.get(ModelVersion, project.active_model_id) \
        if project.active_model_id else None
    fed = session.get(DatasetVersion, model.train_version_id) \
        if model is not None and model.train_version_id else None
    return {"train_version": None if train is None else {
                "id": train.id, "name": train.name, **lineage_completeness(session, train)},
            # a zero-shot model trained on nothing: no data lineage to judge
            "active_model": None if model is None or fed is None else {
                "id": model.id, "name": model.name, "train_version_id": fed.id,
                **lineage_completeness(session, fed, model)}}


def _timed(pairs: Iterable[tuple[datetime | None, datetime | None]]) -> dict[str, Any]:
    seconds = [(end - start).total_seconds() for start, end in pairs
               if start is not None and end is not None]
    return {"n": len(seconds), "median_seconds": median(seconds) if seconds else None}


def _sampled(session: Session, project: Project) -> list[ColumnElement[bool]]:
    """A filter keeping every k-th pool item once the pool passes ``MAX_MEASURED``."""
    n = session.scalar(select(func.count(Item.id)).where(
        Item.project_id == project.id, Item.split == POOL)) or 0
    step = -(-n // MAX_MEASURED)
    return [Item.id % step == 0] if step > 1 else []


def cycle_time_kpi(session: Session, project: Project, batches: list[Batch]) -> dict[str, Any]:
    pool = [Item.project_id == project.id, Item.split == POOL, *_sampled(session, project)]
    in_project = Batch.project_id == project.id
    first_version: dict[int, datetime] = {}
    for v in session.scalars(select(DatasetVersion).where(
            DatasetVersion.project_id == project.id).order_by(DatasetVersion.id)):
        for b in v.batch_ids or []:  # the batch ids of the version's rows
            first_version.setdefault(int(b), v.created_at)
    stages = {
        "ingest_to_prelabel": _timed(session.execute(
            select(Item.created_at, func.min(Prediction.created_at))
            .join(Prediction, Prediction.item_id == Item.id).where(*pool)
            .group_by(Item.id, Item.created_at)).tuples()),
        "selection": _timed(session.execute(
            select(Item.created_at, func.min(Batch.created_at))
            .join(Task, Task.item_id == Item.id).join(Batch, Batch.id == Task.batch_id)
            .where(*pool).group_by(Item.id, Item.created_at)).tuples()),
        "annotation": _timed(session.execute(
            select(Assignment.created_at, Assignment.submitted_at)
            .join(Task, Task.id == Assignment.task_id).join(Batch, Batch.id == Task.batch_id)
            .where(in_project, Assignment.submitted_at.is_not(None))).tuples()),
        "qa": _timed(session.execute(
            select(func.max(Assignment.submitted_at), Batch.closed_at)
            .join(Task, Task.batch_id == Batch.id)
            .join(Assignment, Assignment.task_id == Task.id)
            .where(in_project, Batch.closed_at.is_not(None))
            .group_by(Batch.id, Batch.closed_at)).tuples()),
        "versioning": _timed((b.closed_at, first_version.get(b.id)) for b in batches),
        "training": _timed(session.execute(
            select(DatasetVersion.created_at, func.min(ModelVersion.created_at))
            .join(ModelVersion, ModelVersion.train_version_id == DatasetVersion.id)
            .where(DatasetVersion.project_id == project.id)
            .group_by(DatasetVersion.id, DatasetVersion.created_at)).tuples()),
    }
    return {"stages": stages, "rework": rework_rate(session, project),
            "prelabel_corrected": prelabel_corrected(session, project)}


def rework_rate(session: Session, project: Project) -> dict[str, Any]:
    """Of the items a person labeled, the share whose label a re-review, an adjudication
    or a revert changed after that first human label."""
    first = (select(LabelEvent.item_id, func.min(LabelEvent.id).label("first_id"))
             .join(Item, Item.id == LabelEvent.item_id)
             .where(Item.project_id == project.id,
                    LabelEvent.origin.in_([LabelOrigin.HUMAN, LabelOrigin.REVIEWED]))
             .group_by(LabelEvent.item_id).subquery())
    n_human = session.scalar(select(func.count()).select_from(first)) or 0
    n_reworked = session.scalar(
        select(func.count(func.distinct(LabelEvent.item_id)))
        .join(first, first.c.item_id == LabelEvent.item_id)
        .where(LabelEvent.id > first.c.first_id, LabelEvent.reason.in_(REWORK),
               LabelEvent.to_label.is_distinct_from(LabelEvent.from_label))) or 0
    return {"n_human_labeled": n_human, "n_reworked": n_reworked,
            "rate": n_reworked / n_human if n_human else None}


def prelabel_corrected(session: Session, project: Project) -> dict[str, Any]:
    """Of the submitted answers to a pre-labeled task, the share that changed the label."""
    counts = dict(session.execute(
        select(Annotation.accepted_prelabel, func.count())
        .join(Task, Task.id == Annotation.task_id).join(Batch, Batch.id == Task.batch_id)
        .where(Batch.project_id == project.id, Annotation.status == AnswerStatus.SUBMITTED,
               Task.prelabel.is_not(None))
        .group_by(Annotation.accepted_prelabel)).tuples().all())
    n = sum(counts.values())
    corrected = counts.get(False, 0)
    return {"n_answers": n, "n_corrected": corrected, "share": corrected / n if n else None}


def remediation_kpi(session: Session, project: Project) -> dict[str, Any]:
    rows = session.execute(select(RemediationTarget.status, RemediationTarget.created_at,
                                  RemediationTarget.closed_at)
                           .where(RemediationTarget.project_id == project.id)).all()
    seconds = [(closed - created).total_seconds() for status, created, closed in rows
               if status == TargetStatus.CLOSED and closed is not None]
    by_status = Counter(str(status) for status, _, _ in rows)
    return {"by_status": {s.value: by_status[s.value] for s in TargetStatus},
            "etr_seconds": {"n": len(seconds),
                            "median": median(seconds) if seconds else None,
                            "mean": mean(seconds) if seconds else None}}


def auto_accept_kpi(batches: list[Batch], finals: Counter[tuple[str, str]]) -> dict[str, Any]:
    n_labeled = sum(finals.values())
    n_auto = sum(n for (_label, origin), n in finals.items() if origin == "auto")
    audited = correct = 0
    for b in batches:
        audit = (b.qa or {}).get("audit") or {}
        n = int(audit.get("n") or 0)
        if n:
            audited += n
            correct += int(audit["correct"] if audit.get("correct") is not None
                           else round((audit.get("accuracy") or 0.0) * n))
    return {"n_labeled": n_labeled, "n_auto": n_auto,
            "share": n_auto / n_labeled if n_labeled else None,
            # labels in the pool that no person gave: the answers auto-accept spared, not a
            # measured saving (audited items were answered by people all the same)
            "labels_no_human_gave": n_auto,
            "audit": {"n": audited, "correct": correct,
                      "accuracy": correct / audited if audited else None,
                      "ci95": list(audit_interval(correct, audited)) if audited else None}}
