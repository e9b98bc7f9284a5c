"""From an evaluation to fixes of the data, and back: remediation targets.

After a model is evaluated, ``remediate.review.review_model`` derives the findings (F1 drops,
confusion rises, the rows and cohort behind a drop, deviant slices, suspected label errors).
:func:`record_review` then, in the writing unit of work:

1. moves the project's earlier targets on: *addressed* once the model's training version
   holds a fix (new or changed rows of a boosted class; new labels for re-reviewed items; rows
   under a newer guideline), *closed* once this evaluation confirms it (the F1 or the
   confusion recovered, the slice or the suspects no longer found). ``closed_at -
   created_at`` is the evaluation-to-remediation time;
2. raises each new finding as a target with an owner and an action: a sampling **boost**
   (the default strategy honours it: ``selection.service.target_boost``), **re-review**
   tasks (:func:`rereview_target`), or a **guideline** change request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.enums import FindingKind, TargetAction, TargetStatus
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.quality.review import send_for_rereview
from labelloop.remediate.review import Review, review_model
from labelloop.remediate.targets import (
    confusion_recovered,
    f1_recovered,
)
from labelloop.store.models import (
    Batch,
    DatasetRow,
    DatasetVersion,
    LabelEvent,
    ModelVersion,
    Project,
    RemediationTarget,
    Task,
)

OPEN_STATES = (TargetStatus.OPEN, TargetStatus.ACTING, TargetStatus.ADDRESSED)
ACTIONS = {FindingKind.F1_DROP: TargetAction.BOOST, FindingKind.CONFUSION: TargetAction.BOOST,
           FindingKind.SLICE: TargetAction.REREVIEW,
           FindingKind.LABEL_ERRORS: TargetAction.REREVIEW}


# -- writing: targets raised, moved on, closed -------------------------------------------


def record_review(session: Session, project: Project, model: ModelVersion, review: Review,
                  *, by: str) -> dict[str, list[int]]:
    """Move the project's earlier targets on with ``model``'s evaluation, then raise its
    findings as targets owned by ``by`` (a finding already open is not raised again).
    ``model`` must be stored. Returns the ids raised, addressed and closed."""
    now = datetime.now(UTC)
    addressed, closed = [], []
    version = session.get(DatasetVersion, model.train_version_id) \
        if model.train_version_id else None
    for target in session.scalars(select(RemediationTarget).where(
            RemediationTarget.project_id == project.id,
            RemediationTarget.status.in_(OPEN_STATES), RemediationTarget.model_id != model.id)
            .order_by(RemediationTarget.id)):
        if target.status != TargetStatus.ADDRESSED and version is not None and \
                _addresses(session, target, version):
            target.status, target.addressed_at = TargetStatus.ADDRESSED, now
            target.addressed_version_id = version.id
            addressed.append(target.id)
        if target.status == TargetStatus.ADDRESSED and _confirms(session, target, model,
                                                                 review):
            target.status, target.closed_at = TargetStatus.CLOSED, now
            target.closed_by_model_id = model.id
            closed.append(target.id)
    still_open = {_key(t) for t in session.scalars(select(RemediationTarget).where(
        RemediationTarget.project_id == project.id,
        RemediationTarget.status.in_(OPEN_STATES)))}
    watermark = session.scalar(select(func.max(LabelEvent.id))) or 0
    raised = []
    for f in review.findings:
        if f.key() in still_open:
            continue
        still_open.add(f.key())
        action = ACTIONS[FindingKind(f.kind)]
        if f.kind == FindingKind.SLICE and f.slice.get("attribute") == "guideline_version":
            action = TargetAction.GUIDELINE
        boost = action == TargetAction.BOOST
        target = RemediationTarget(
            project_id=project.id, model_id=model.id, kind=f.kind, labels=list(f.labels),
            slice=_jsonable(f.slice), figure=float(f.figure), baseline=f.baseline,
            message=f.message, evidence={**_jsonable(f.evidence), "event_watermark": watermark,
                                         "previous_model_id": review.previous_model_id},
            action=action, boost=2.0, owner=by,
            status=TargetStatus.ACTING if boost else TargetStatus.OPEN,
            guideline_version=project.guideline_version, created_at=now,
            acted_at=now if boost else None)
        session.add(target)
        session.flush()
        raised.append(target.id)
    return {"raised": raised, "addressed": addressed, "closed": closed}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v
    return conv(d)


def _key(t: RemediationTarget) -> tuple[Any, ...]:
    if t.kind == FindingKind.LABEL_ERRORS:
        return (str(t.kind),)
    return (str(t.kind), tuple(t.labels), tuple(sorted((t.slice or {}).items())))


def _addresses(session: Session, target: RemediationTarget, version: DatasetVersion) -> bool:
    """Does ``version`` hold a fix for ``target``?

    - boost: it adds or relabels rows of the target's classes against the version the
      finding was made on;
    - re-review: at least half the target's items carry a label given after it was raised;
    - guideline: it holds rows labeled under a guideline newer than the one the finding saw.
    """
    if target.action == TargetAction.BOOST:
        found_on = session.get(ModelVersion, target.model_id)
        old_id = found_on.train_version_id if found_on else None
        if old_id is None or old_id == version.id:
            return False
        old = select(DatasetRow.item_id, DatasetRow.label).where(
            DatasetRow.version_id == old_id).subquery()
        changed = session.scalar(
            select(func.count()).select_from(DatasetRow)
            .outerjoin(old, old.c.item_id == DatasetRow.item_id)
            .where(DatasetRow.version_id == version.id,
                   DatasetRow.label.in_(target.labels) | old.c.label.in_(target.labels),
                   old.c.label.is_(None) | (old.c.label != DatasetRow.label))) or 0
        return changed > 0
    if target.action == TargetAction.REREVIEW:
        items = list(target.evidence.get("item_ids", []))
        if not items:
            return False
        fresh = session.scalar(select(func.count()).select_from(DatasetRow).where(
            DatasetRow.version_id == version.id, DatasetRow.item_id.in_(items),
            DatasetRow.label_event_id > int(target.evidence.get("event_watermark", 0)))) or 0
        return 2 * fresh >= len(items)
    seen = target.guideline_version or 0
    newer = session.scalar(select(func.count()).select_from(DatasetRow).where(
        DatasetRow.version_id == version.id, DatasetRow.guideline_version > seen)) or 0
    return newer > 0


def _confirms(session: Session, target: RemediationTarget, model: ModelVersion,
              review: Review) -> bool:
    """Does ``model``'s evaluation confirm the fix? The F1 or the confusion recovered (on the
    evaluation version the finding was made on), the slice is no longer found, or fewer than
    half of the suspected items are still suspected."""
    if target.kind in (FindingKind.F1_DROP, FindingKind.CONFUSION):
        found_on = session.get(ModelVersion, target.model_id)
        if found_on is None or found_on.eval_version_id != model.eval_version_id \
                or not model.metrics.get("per_class") or target.baseline is None:
            return False
        if target.kind == FindingKind.F1_DROP:
            return f1_recovered(model.metrics, target.labels[0], target.baseline)
        return confusion_recovered(model.metrics, tuple(target.labels), target.baseline)
    if target.kind == FindingKind.SLICE:
        key = (str(target.slice.get("attribute")), str(target.slice.get("value")))
        return review.n_rows > 0 and key not in review.slice_keys()
    items = set(target.evidence.get("item_ids", []))
    return review.n_rows > 0 and 2 * len(items & review.suspects) < len(items)


# -- reading and acting on targets ---------------------------------------------------------


def get_target(session: Session, project: Project, target_id: int) -> RemediationTarget:
    target = session.get(RemediationTarget, target_id) if 0 < target_id < 2**63 else None
    if target is None or target.project_id != project.id:
        raise NotFoundError(f"no remediation target {target_id} in project {project.name!r}",
                            where="target")
    return target


def list_targets(session: Session, project: Project, *, status: str | None = None,
                 kind: str | None = None) -> list[RemediationTarget]:
    query = select(RemediationTarget).where(RemediationTarget.project_id == project.id)
    if status is not None:
        if status not in {s.value for s in TargetStatus}:
            raise ValidationError(f"unknown status {status!r}; one of "
                                  f"{', '.join(s.value for s in TargetStatus)}",
                                  where="status")
        query = query.where(RemediationTarget.status == status)
    if kind is not None:
        if kind not in {k.value for k in FindingKind}:
            raise ValidationError(f"unknown kind {kind!r}; one of "
                                  f"{', '.join(k.value for k in FindingKind)}", where="kind")
        query = query.where(RemediationTarget.kind == kind)
    return list(session.scalars(query.order_by(RemediationTarget.id)))


def target_dict(t: RemediationTarget) -> dict[str, Any]:
    etr = (t.closed_at - t.created_at).total_seconds() if t.closed_at else None
    return {"id": t.id, "model_id": t.model_id, "kind": str(t.kind), "labels": t.labels,
            "slice": t.slice, "figure": t.figure, "baseline": t.baseline, "message": t.message,
            "action": str(t.action), "boost": t.boost, "owner": t.owner,
            "status": str(t.status), "rereview_batch_id": t.rereview_batch_id,
            "guideline_version": t.guideline_version,
            "addressed_version_id": t.addressed_version_id,
            "closed_by_model_id": t.closed_by_model_id, "note": t.note,
            "n_items": len(t.evidence.get("item_ids", [])),
            "behind": t.evidence.get("behind", []),
            "created_at": t.created_at, "acted_at": t.acted_at,
            "addressed_at": t.addressed_at, "closed_at": t.closed_at,
            "evaluation_to_remediation_seconds": etr}


def update_target(session: Session, project: Project, target: RemediationTarget, *,
                  owner: str | None = None, action: str | None = None,
                  boost: float | None = None, dismiss: bool = False,
                  note: str | None = None) -> RemediationTarget:
    """Reassign, change the action, set the boost, dismiss (with a note). A closed or
    dismissed target changes no more (ConflictError)."""
    if target.status in (TargetStatus.CLOSED, TargetStatus.DISMISSED):
        raise ConflictError(f"target {target.id} is {target.status}; it changes no more",
                            where="target")
    if owner is not None:
        from labelloop.access.users import get_user

        get_user(session, owner)  # NotFoundError for a name that is nobody
        target.owner = owner
    if action is not None:
        if action not in {a.value for a in TargetAction}:
            raise ValidationError(f"unknown action {action!r}; one of "
                                  f"{', '.join(a.value for a in TargetAction)}",
                                  where="action")
        if action == TargetAction.REREVIEW and not target.evidence.get("item_ids"):
            raise ValidationError(f"target {target.id} names no items to re-review",
                                  where="action")
        if action != target.action:
            target.action = TargetAction(action)
            boosting = action == TargetAction.BOOST
            target.status = TargetStatus.ACTING if boosting else TargetStatus.OPEN
            target.acted_at = datetime.now(UTC) if boosting else None
    if boost is not None:
        if not 1.0 <= boost <= 100.0:
            raise ValidationError(f"boost must lie in [1, 100], got {boost}", where="boost")
        target.boost = boost
    if note is not None:
        target.note = note
    if dismiss:
        target.status = TargetStatus.DISMISSED
        target.closed_at = datetime.now(UTC)
    session.flush()
    return target


def rereview_target(session: Session, project: Project, target: RemediationTarget, *,
                    required: int | None = None) -> Batch:
    """Carry out a re-review target: a ``re-review`` batch of its items (those not already in
    an open task). ConflictError when it is not a re-review target, has been acted on, or all
    its items are in open tasks already."""
    if target.action != TargetAction.REREVIEW:
        raise ConflictError(f"target {target.id}'s action is {target.action}, not re-review",
                            where="target")
    if target.status != TargetStatus.OPEN:
        raise ConflictError(f"target {target.id} is {target.status}, not open",
                            where="target")
    items = list(target.evidence.get("item_ids", []))
    busy = set(session.scalars(select(Task.item_id).where(Task.item_id.in_(items),
                                                          Task.status == "open")))
    fresh = [i for i in items if i not in busy]
    if not fresh:
        raise ConflictError(f"every item of target {target.id} is in an open task already",
                            where="target")
    batch = send_for_rereview(session, project, fresh, required=required)
    target.rereview_batch_id, target.status = batch.id, TargetStatus.ACTING
    target.acted_at = datetime.now(UTC)
    session.flush()
    return batch


def review_and_record(session: Session, project: Project, model: ModelVersion, *,
                      by: str) -> dict[str, list[int]]:
    """:func:`review_model` then :func:`record_review` in one unit of work (the demo and
    scripts; the training job splits them: the review reads while the writer is free)."""
    return record_review(session, project, model, review_model(session, project, model),
                         by=by)
