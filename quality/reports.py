"""Quality reports: per project, per batch, per annotator and per guideline version; drift.

Everything here is read from the store and computed on request: the answers (with their
batch, guideline version, gold label and the batch's consensus) are the one source, in the
record shape that ``quality.drift`` reads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from dataclasses import asdict
from statistics import median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.annotate.service import GOLD_SPLIT
from labelloop.core.enums import AnswerStatus
from labelloop.core.errors import ValidationError
from labelloop.quality.drift import detect_drift
from labelloop.quality.gold import gold_scorecard
from labelloop.quality.service import gate_bars, project_gate
from labelloop.store.models import (
    Annotation,
    Annotator,
    Assignment,
    Batch,
    FinalLabel,
    Item,
    Project,
    Task,
)
from labelloop.versions.service import GATED_OK

CLOSED = ("passed", "flagged", "resolved")


def vote_records(session: Session, project: Project) -> list[dict[str, Any]]:
    """One record per answer in the project, in batch order.

    ``label``: the gold label on a gold item, else the batch's consensus (its final label)
    or, before the batch closes, the answer itself; ``correct``: the answer matches the gold
    label (``None`` off gold); ``agrees_with_consensus``: the answer matches the consensus of
    an item with two or more answers (``None`` otherwise, and once a later batch relabeled
    the item).
    """
    rows = session.execute(
        select(Annotation, Task.batch_id, Batch.status, Item.split, Item.given_label)
        .join(Task, Task.id == Annotation.task_id).join(Batch, Batch.id == Task.batch_id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Batch.project_id == project.id, Annotation.status == AnswerStatus.SUBMITTED)
        .order_by(Task.batch_id, Annotation.id)).all()
    n_answers = Counter(a.task_id for a, *_ in rows)
    consensus = {(f.item_id, f.batch_id): f.label for f in session.scalars(
        select(FinalLabel).join(Batch, Batch.id == FinalLabel.batch_id).where(
            Batch.project_id == project.id, Batch.status.in_(CLOSED)))}
    records = []
    for a, batch_id, status, split, given in rows:
        gold = given if split == GOLD_SPLIT else None
        agreed = consensus.get((a.item_id, batch_id))
        if gold is not None or n_answers[a.task_id] < 2:
            agreed = None
        records.append({
            "batch": batch_id, "batch_status": status, "annotator": a.annotator,
            "label": gold or agreed or a.label, "answer": a.label,
            "guideline_version": a.guideline_version,
            "correct": (a.label == gold) if gold is not None else None,
            "agrees_with_consensus": (a.label == agreed) if agreed is not None else None,
            "accepted_prelabel": a.accepted_prelabel, "seconds": a.seconds_spent})
    return records


def rates(records: list[dict[str, Any]], key: Callable[[dict[str, Any]], Hashable],
          ) -> dict[Hashable, dict[str, Any]]:
    """Agreement with consensus and gold accuracy per ``key(record)``."""
    groups: dict[Hashable, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    out = {}
    for k, rs in groups.items():
        agree = [r["agrees_with_consensus"] for r in rs if r["agrees_with_consensus"] is not None]
        gold = [r["correct"] for r in rs if r["correct"] is not None]
        out[k] = {"n_answers": len(rs),
                  "agreement": sum(agree) / len(agree) if agree else None,
                  "n_agreement": len(agree),
                  "gold_accuracy": sum(gold) / len(gold) if gold else None, "n_gold": len(gold)}
    return out


def project_report(session: Session, project: Project) -> dict[str, Any]:
    """The project's quality at a glance: gate bars, each batch's figures and decision,
    labels held back, gold accuracy, figures per guideline version, flagged annotators."""
    records = vote_records(session, project)
    per_batch = rates(records, lambda r: r["batch"])
    batches = []
    for b in session.scalars(select(Batch).where(Batch.project_id == project.id)
                             .order_by(Batch.id)):
        qa = b.qa or {}
        batches.append({
            "batch_id": b.id, "status": b.status, "strategy": b.strategy,
            "guideline_version": b.guideline_version, "gate_reason": b.gate_reason,
            **{k: qa.get(k) for k in ("n_tasks", "n_gold_tasks", "krippendorff_alpha",
                                      "cohen_kappa", "gold_accuracy", "label_error_rate")},
            "agreement_with_consensus": per_batch.get(b.id, {}).get("agreement")})
    finals = session.execute(
        select(FinalLabel.origin, Batch.status, func.count())
        .join(Item, Item.id == FinalLabel.item_id)
        .outerjoin(Batch, Batch.id == FinalLabel.batch_id)
        .where(Item.project_id == project.id).group_by(FinalLabel.origin, Batch.status)).all()
    by_origin: Counter[str] = Counter()
    for origin, _, n in finals:
        by_origin[origin] += n
    gold = [r["correct"] for r in records if r["correct"] is not None]
    flagged = session.scalars(select(Annotator).where(
        Annotator.project_id == project.id, Annotator.status == "flagged").order_by(
        Annotator.name))
    return {
        "project": project.name, "gate": gate_bars(project_gate(project)),
        "gold_share": project.gold_share, "gold_min_accuracy": project.gold_min_accuracy,
        "batches": batches,
        "batch_status": dict(Counter(b["status"] for b in batches)),
        "final_labels": {
            "by_origin": dict(by_origin),
            "held_back": sum(n for _, status, n in finals
                             if status is not None and status not in GATED_OK)},
        "gold": {"n_items": session.scalar(select(func.count(Item.id)).where(
                     Item.project_id == project.id, Item.split == GOLD_SPLIT)) or 0,
                 "n_answers": len(gold),
                 "accuracy": sum(gold) / len(gold) if gold else None},
        "by_guideline_version": rates(records, lambda r: r["guideline_version"]),
        "annotators": {"n": len({r["annotator"] for r in records}),
                       "flagged": [{"annotator": a.name, "reason": a.reason,
                                    "flagged_at": a.flagged_at} for a in flagged]},
    }


def annotator_scorecards(session: Session, project: Project) -> list[dict[str, Any]]:
    """Per annotator: standing, answers, agreement with consensus, gold accuracy with its
    Wilson 95% interval and confusion (``{gold label: {answer: count}}``, non-zero cells),
    open tasks, and the same figures per guideline version."""
    records = vote_records(session, project)
    golds = [r for r in records if r["correct"] is not None]
    scores = gold_scorecard([r["annotator"] for r in golds], [r["answer"] for r in golds],
                            [r["label"] for r in golds], list(project.labels))
    standing = {a.name: a for a in session.scalars(select(Annotator).where(
        Annotator.project_id == project.id))}
    open_tasks = dict(session.execute(
        select(Assignment.annotator, func.count(Assignment.id)).join(Task).join(Batch)
        .where(Batch.project_id == project.id, Assignment.status == "open")
        .group_by(Assignment.annotator)).all())
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_person[r["annotator"]].append(r)
    cards = []
    for name in sorted(set(by_person) | set(standing) | set(open_tasks)):
        rs, row, score = by_person.get(name, []), standing.get(name), scores.get(name)
        overall = rates(rs, lambda r: "all").get("all", {})
        seconds = [r["seconds"] for r in rs if r["seconds"] is not None]
        cards.append({
            "annotator": name, "status": row.status if row else "active",
            "reason": row.reason if row else None,
            "flagged_at": row.flagged_at if row else None,
            "n_answers": len(rs), "open_tasks": int(open_tasks.get(name, 0)),
            "agreement": overall.get("agreement"), "n_agreement": overall.get("n_agreement", 0),
            "accepted_prelabel_share": (sum(r["accepted_prelabel"] for r in rs) / len(rs)
                                        if rs else None),
            "median_seconds": median(seconds) if seconds else None,
            "gold": None if score is None else {
                "n": score.n, "correct": score.correct, "accuracy": score.accuracy,
                "ci95": [score.ci_low, score.ci_high],
                "confusion": {g: {a: n for a, n in row_.items() if n}
                              for g, row_ in score.confusion.items() if any(row_.values())}},
            "by_guideline_version": rates(rs, lambda r: r["guideline_version"]),
        })
    return cards


def drift_findings(session: Session, project: Project, margin: float = 0.05, *,
                   current: int = 1, min_count: int = 20) -> dict[str, Any]:
    """Did agreement or gold accuracy fall in the latest ``current`` closed batches against
    all closed batches before them, by more than ``margin``? Each finding names its likely
    causes (annotators, labels, a guideline change); see ``quality.drift``."""
    if not 0.0 < margin < 1.0:
        raise ValidationError(f"margin must lie in (0, 1), got {margin}", where="margin")
    if current < 1:
        raise ValidationError(f"current must be at least 1, got {current}", where="current")
    if min_count < 1:
        raise ValidationError(f"min_count must be at least 1, got {min_count}",
                              where="min_count")
    records = [r for r in vote_records(session, project) if r["batch_status"] in CLOSED]
    batches = sorted({r["batch"] for r in records})
    out: dict[str, Any] = {"margin": margin, "min_count": min_count,
                           "baseline_batches": batches[:-current],
                           "current_batches": batches[-current:], "findings": [],
                           "by_batch": rates(records, lambda r: r["batch"]),
                           "by_guideline_version": rates(records,
                                                         lambda r: r["guideline_version"])}
    if len(batches) <= current:
        out["note"] = (f"drift compares against earlier batches: {len(batches)} closed "
                       f"batches, {current} of them current")
        out["baseline_batches"] = []
        return out
    findings = detect_drift(records, out["baseline_batches"], margin, min_count,
                            current_batches=out["current_batches"])
    out["findings"] = [asdict(f) for f in findings]
    return out
