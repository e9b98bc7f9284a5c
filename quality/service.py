"""Close a batch: agreement, aggregation, gold scores, the audit of auto-accepted labels, the
quality gate.

A batch that passes its gate feeds dataset versions; one that fails is ``flagged`` and kept
out of versions, with the reason, until a reviewer resolves it (or its items pass re-review,
see ``quality.review``). Gold tasks (items of split ``gold``) are scored against their expert
label and kept out of agreement, aggregation and final labels.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.annotate.service import GOLD_SPLIT
from labelloop.core.enums import AnswerStatus, LabelOrigin, LabelReason
from labelloop.core.errors import ConflictError, ValidationError
from labelloop.quality.aggregation import aggregate, supported_method
from labelloop.quality.agreement import batch_agreement
from labelloop.quality.gates import QualityGate, evaluate_gate
from labelloop.quality.gold import gold_scorecard
from labelloop.quality.review import REREVIEW, batch_label_error_rate
from labelloop.selection.auto_accept import audit_interval
from labelloop.selection.calibration import record_audit
from labelloop.selection.routing import AUDIT
from labelloop.store.labels import NewLabel, record_labels
from labelloop.store.models import (
    Annotation,
    Batch,
    FinalLabel,
    Item,
    ModelVersion,
    Project,
    Task,
    utcnow,
)


def project_gate(project: Project) -> QualityGate:
    return QualityGate(min_alpha=project.min_agreement, min_kappa=project.min_kappa,
                       min_gold_accuracy=project.min_gold_accuracy,
                       max_error_rate=project.max_error_rate)


def close_batch(session: Session, batch: Batch, *, method: str = "dawid-skene") -> dict[str, Any]:
    """Measure the batch, write its final labels, decide its gate. Returns the QA figures."""
    project = session.get(Project, batch.project_id)
    assert project is not None
    tasks: list[Task] = []
    gold_tasks: list[Task] = []
    for task, split in session.execute(select(Task, Item.split).join(
            Item, Item.id == Task.item_id).where(Task.batch_id == batch.id).order_by(Task.id)):
        (gold_tasks if split == GOLD_SPLIT else tasks).append(task)
    annotations = list(session.scalars(select(Annotation).where(
        Annotation.task_id.in_([t.id for t in tasks + gold_tasks]),
        Annotation.status == AnswerStatus.SUBMITTED)))
    by_task: dict[int, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by_task[a.task_id].append(a)
    answers = [a for t in tasks for a in by_task[t.id]]  # gold answers are scored, not counted

    votes = [[(a.annotator, a.label) for a in by_task[t.id]] for t in tasks]
    agreement = batch_agreement(votes, list(project.labels))
    labels_index = {lb: i for i, lb in enumerate(project.labels)}
    annotators = sorted({a.annotator for a in answers})
    ann_index = {name: i for i, name in enumerate(annotators)}
    item_idx = np.array([i for i, t in enumerate(tasks) for _ in by_task[t.id]], dtype=int)
    ann_idx = np.array([ann_index[a.annotator] for a in answers], dtype=int)
    lab_idx = np.array([labels_index[a.label] for a in answers], dtype=int)
    agg = aggregate(supported_method(method, len(lab_idx), len(project.labels),
                                     len(annotators)), item_idx, ann_idx, lab_idx,
                    len(tasks), len(project.labels))

    audit_n = audit_ok = audit_unresolved = 0
    finals: list[NewLabel] = []
    held: list[int] = []
    for i, task in enumerate(tasks):
        if not by_task[task.id]:
            continue
        label = project.labels[int(agg.labels[i])]
        share = float(np.mean([a.label == label for a in by_task[task.id]]))
        posterior = {project.labels[k]: round(float(p), 5)
                     for k, p in enumerate(agg.posterior[i]) if p >= 1e-3}
        hold = critical_disagreement([a.label for a in by_task[task.id]], label,
                                     project.critical_labels)
        if hold:
            held.append(task.item_id)  # a reviewer decides; no label (nor version) till then
        else:
            finals.append(_final(task, batch, project, label, sorted(
                by_task[task.id], key=lambda a: a.annotator), share, posterior))
        if task.reason == AUDIT:
            if hold or _unresolved([a.label for a in by_task[task.id]]):
                audit_unresolved += 1  # no truth to grade the model against
                continue
            audit_n += 1
            audit_ok += int(label == task.prelabel)
    record_labels(session, finals)

    gold = _gold_figures(session, project, gold_tasks, by_task)
    errors = (batch_label_error_rate(session, project, batch)
              if project.max_error_rate is not None else None)
    figures: dict[str, Any] = {
        "n_tasks": len(tasks), "n_annotations": len(answers),
        "held_for_review": held,
        "n_gold_tasks": len(gold_tasks),
        "n_auto_accepted": batch.n_auto_accepted, "aggregation": agg.method,
        "agreement": agreement.to_dict(),
        "krippendorff_alpha": agreement.krippendorff_alpha,
        "cohen_kappa": agreement.cohen_kappa,
        "gold_accuracy": gold["accuracy"], "gold": gold,
        "label_error_rate": errors["rate"] if errors else None, "label_errors": errors,
        "accepted_prelabel_share": (float(np.mean([a.accepted_prelabel for a in answers]))
                                    if answers else None),
        "audit": {"n": audit_n, "correct": audit_ok, "unresolved": audit_unresolved,
                  "accuracy": audit_ok / audit_n if audit_n else None,
                  "ci95": list(audit_interval(audit_ok, audit_n)) if audit_n else None},
    }
    if audit_n:
        model = session.get(ModelVersion, batch.model_version_id) \
            if batch.model_version_id else None
        tightened = record_audit(session, project, model, audit_ok, audit_n, batch.id)
        figures["audit"]["thresholds_after"] = tightened
    gate = project_gate(project)
    decision = evaluate_gate(figures, gate)
    batch.qa = figures | {"gate": {"passed": decision.passed, "reasons": decision.reasons,
                                   "figures": decision.figures, "bars": gate_bars(gate)}}
    batch.status = "passed" if decision.passed else "flagged"
    batch.closed_at = utcnow()
    batch.gate_reason = None if decision.passed else "; ".join(decision.reasons)
    session.flush()
    return batch.qa


def critical_disagreement(answers: list[str], decided: str, critical: list[str]) -> bool:
    """People disagree on an item and someone called it safety-critical, yet the
    aggregate is not that critical label: never settle that by vote (a reviewer decides)."""
    named = {a for a in answers if a in critical}
    return bool(named) and len(set(answers)) > 1 and decided not in named


def _unresolved(labels: list[str]) -> bool:
    """Three or more answers and no label given by more than half: the people adjudicating
    an audit item disagree among themselves, so it cannot grade the model either way."""
    return len(labels) >= 3 and 2 * max(Counter(labels).values()) <= len(labels)


def _gold_figures(session: Session, project: Project, gold_tasks: list[Task],
                  by_task: dict[int, list[Annotation]]) -> dict[str, Any]:
    """Accuracy on the batch's gold tasks, overall and per annotator."""
    truth = {it.id: it.given_label for it in session.scalars(
        select(Item).where(Item.id.in_([t.item_id for t in gold_tasks])))}
    answers = [(a.annotator, a.label, truth[t.item_id]) for t in gold_tasks
               for a in by_task[t.id]]
    scores = gold_scorecard([a for a, _, _ in answers], [lb for _, lb, _ in answers],
                            [g for _, _, g in answers], list(project.labels))
    correct = sum(s.correct for s in scores.values())
    return {"n": len(answers), "correct": correct,
            "accuracy": correct / len(answers) if answers else None,
            "per_annotator": {name: {"n": s.n, "correct": s.correct, "accuracy": s.accuracy}
                              for name, s in sorted(scores.items())}}


def gate_bars(gate: QualityGate) -> dict[str, float | None]:
    return {"min_alpha": gate.min_alpha, "min_kappa": gate.min_kappa,
            "min_gold_accuracy": gate.min_gold_accuracy, "max_error_rate": gate.max_error_rate}


def _final(task: Task, batch: Batch, project: Project, label: str,
           answers: list[Annotation], share: float, posterior: dict[str, float]) -> NewLabel:
    rereview = batch.strategy == REREVIEW
    return NewLabel(task.item_id, label, by=f"qa:batch-{batch.id}",
                    reason=LabelReason.REREVIEW if rereview else LabelReason.ANSWER,
                    origin=LabelOrigin.HUMAN, batch_id=batch.id,
                    annotators=[a.annotator for a in answers], agreement=share,
                    posterior=posterior, model_version_id=batch.model_version_id,
                    guideline_version=answers[0].guideline_version if answers
                    else project.guideline_version)


def resolve_batch(session: Session, batch: Batch, reviewer: str,
                  corrections: dict[int, str] | None = None, note: str = "") -> Batch:
    """A reviewer adjudicates a batch: per-item corrections, and a label for each item held
    back for review (a safety-critical disagreement). A flagged batch may then feed
    versions. The original gate figures stay in ``batch.qa``."""
    held = set(batch.qa.get("held_for_review", []))
    if batch.status != "flagged" and not held:
        raise ConflictError(f"batch {batch.id} is {batch.status} with nothing held for "
                            "review; only flagged batches are resolved", where="batch_id")
    if not reviewer.strip():
        raise ValidationError("reviewer name is empty", where="reviewer")
    project = session.get(Project, batch.project_id)
    assert project is not None
    changes = [adjudication(session, batch, project, item_id, label, reviewer, note,
                            held=item_id in held)
               for item_id, label in (corrections or {}).items()]
    record_labels(session, changes)
    still = sorted(held - set(corrections or {}))
    if batch.status == "flagged":
        batch.status = "resolved"
    batch.qa = {**batch.qa, "held_for_review": still,
                "resolution": {"reviewer": reviewer, "note": note,
                               "n_corrections": len(corrections or {})}}
    session.flush()
    return batch


def adjudication(session: Session, batch: Batch, project: Project, item_id: int, label: str,
                 reviewer: str, note: str = "", *, held: bool = False) -> NewLabel:
    """A reviewer's label for an item of ``batch``: the first label of an item held for
    review (``held``), else a correction of the label the batch gave it; the answers' people
    and figures carry over, with the reviewer added."""
    if label not in project.labels:
        raise ValidationError(f"unknown label {label!r}", where=f"corrections[{item_id}]")
    final = session.get(FinalLabel, item_id)
    if held:  # no label yet: the reviewer's is the first
        carried: dict[str, Any] = {"annotators": [reviewer],
                                   "model_version_id": batch.model_version_id,
                                   "guideline_version": project.guideline_version}
    elif final is None or final.batch_id != batch.id:
        raise ValidationError(f"item {item_id} is not labeled in batch {batch.id}",
                              where=f"corrections[{item_id}]")
    else:
        carried = {"annotators": [*final.annotators, reviewer],
                   "agreement": final.agreement, "posterior": final.posterior,
                   "model_version_id": final.model_version_id,
                   "guideline_version": final.guideline_version}
    return NewLabel(item_id, label, by=reviewer, reason=LabelReason.ADJUDICATION,
                    origin=LabelOrigin.REVIEWED, batch_id=batch.id, note=note, **carried)


def batch_report(batch: Batch) -> dict[str, Any]:
    return {"batch_id": batch.id, "status": batch.status, "strategy": batch.strategy,
            "gate_reason": batch.gate_reason, "qa": batch.qa}
