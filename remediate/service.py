"""From an evaluation to fixes of the data, and back: remediation targets.

After a model is evaluated, :func:`review_model` derives the findings (``remediate.targets``):
classes whose F1 fell against the previous model on the same evaluation version, confused
pairs that rose, slices of the training rows (annotator, batch, guideline version, ingest
batch, origin) whose labels disagree with a model that did not see them, and suspected label
errors (confident learning). :func:`record_review` then, in the writing unit of work:

1. moves the project's earlier targets on: *addressed* once the model's training version
   holds a fix (new or changed rows of a boosted class; new labels for re-reviewed items; rows
   under a newer guideline), *closed* once this evaluation confirms it (the F1 or the
   confusion recovered, the slice or the suspects no longer found). ``closed_at -
   created_at`` is the evaluation-to-remediation time;
2. raises each new finding as a target with an owner and an action: a sampling **boost**
   (the default strategy honours it: ``selection.service.target_boost``), **re-review**
   tasks (:func:`rereview_target`), or a **guideline** change request.

A slice is tested by leaving it out: for each attribute the rows are split into groups
(``GroupKFold`` over the attribute's values) and each group is predicted by a logistic
regression fitted on the others, so a cohort that labels a class its own way stands out
however many rows it labeled.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.enums import FindingKind, LabelReason, TargetAction, TargetStatus
from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.prelabel.cache import load_embeddings
from labelloop.quality.review import scan_labels, send_for_rereview
from labelloop.remediate.targets import (
    Finding,
    confusion_recovered,
    confusion_rises,
    f1_drops,
    f1_recovered,
    slice_findings,
)
from labelloop.store.models import (
    Batch,
    DatasetRow,
    DatasetVersion,
    Item,
    LabelEvent,
    ModelVersion,
    Project,
    RemediationTarget,
    Task,
)

MAX_ROWS = 20_000  # training rows a review reads at most (a uniform sample beyond)
MAX_EVIDENCE = 500  # items a target names at most
MIN_SUSPECTS = 5  # fewer suspected label errors are not worth a target
SLICE_ATTRIBUTES = ("annotator", "batch", "guideline_version", "ingest_batch", "origin")
OPEN_STATES = (TargetStatus.OPEN, TargetStatus.ACTING, TargetStatus.ADDRESSED)
ACTIONS = {FindingKind.F1_DROP: TargetAction.BOOST, FindingKind.CONFUSION: TargetAction.BOOST,
           FindingKind.SLICE: TargetAction.REREVIEW,
           FindingKind.LABEL_ERRORS: TargetAction.REREVIEW}


@dataclass
class Review:
    """What :func:`review_model` found for one model (not yet stored)."""

    findings: list[Finding]
    previous_model_id: int | None
    suspects: set[int] = field(default_factory=set)  # items suspected of a wrong label
    n_rows: int = 0  # training rows read

    def slice_keys(self) -> set[tuple[str, str]]:
        return {(f.slice["attribute"], str(f.slice["value"])) for f in self.findings
                if f.kind == FindingKind.SLICE}


def previous_model(session: Session, model: ModelVersion) -> ModelVersion | None:
    """The project's latest model before ``model`` evaluated on the same version."""
    if model.eval_version_id is None:
        return None
    query = select(ModelVersion).where(ModelVersion.project_id == model.project_id,
                                       ModelVersion.eval_version_id == model.eval_version_id)
    if model.id is not None:
        query = query.where(ModelVersion.id < model.id)
    for m in session.scalars(query.order_by(ModelVersion.id.desc()).limit(5)):
        if m.metrics.get("per_class"):
            return m
    return None


def review_model(session: Session, project: Project, model: ModelVersion, *,
                 seed: int = 0) -> Review:
    """The findings of ``model``'s evaluation (reads only: runs in a read-only unit of work,
    before or after the model's row is stored). A model without an evaluation has none."""
    if not model.metrics.get("per_class"):
        return Review([], None)
    before = previous_model(session, model)
    found: list[Finding] = []
    if before is not None:
        found += f1_drops(model.metrics, before.metrics)
        found += confusion_rises(model.metrics, before.metrics)
    rows = _training_rows(session, model, seed)
    suspects: set[int] = set()
    if rows is not None:
        item_ids, labels, x, slices = rows.item_ids, rows.labels, rows.x, rows.slices
        dropped = {lb for f in found for lb in f.labels}
        if before is not None and dropped:
            found += _attribute_changes(session, model, before, rows, dropped, seed)
        # Two-valued attributes are left to the attribution above: with two groups, each
        # predicted by a model of the other, both look equally wrong to each other.
        slices = {a: g for a, g in slices.items() if len({repr(v) for v in g}) >= 3}
        predicted = {a: _left_out_predictions(x, labels, groups, seed)
                     for a, groups in slices.items()}
        # Re-reviewed rows were picked because a model doubted them: their slices (the
        # reviewers, the re-review batch) would stand out for that alone, so they are not
        # tested (they still train the models that test the others).
        tested = [i for i, again in enumerate(rows.rereviewed) if not again]
        for f in slice_findings({a: [g[i] for i in tested] for a, g in slices.items()},
                                {a: [p[i] for i in tested] for a, p in predicted.items()},
                                [labels[i] for i in tested]):
            found.append(Finding(f.kind, f.labels, f.figure, f.message, f.baseline, f.slice, {
                **{k: v for k, v in f.evidence.items() if k != "rows"},
                "item_ids": [item_ids[tested[i]] for i in f.evidence["rows"][:MAX_EVIDENCE]]}))
        try:
            issues, _ = scan_labels(x, labels, list(project.labels))
        except ValidationError:
            issues = np.zeros(0, dtype=np.int64)  # too few labels to judge
        suspects = {item_ids[i] for i in issues}
        if issues.size >= MIN_SUSPECTS:
            named = tuple(dict.fromkeys(labels[i] for i in issues[:MAX_EVIDENCE]))
            found.append(Finding(
                FindingKind.LABEL_ERRORS, named[:5], float(issues.size),
                f"{issues.size} of {len(labels)} training labels look wrong to a model that "
                "did not see them (confident learning)",
                evidence={"item_ids": [item_ids[i] for i in issues[:MAX_EVIDENCE]],
                          "n_rows": len(labels)}))
    found = _explain_drops(found)
    return Review(found, before.id if before else None, suspects,
                  len(rows.item_ids) if rows is not None else 0)


def _attribute_changes(session: Session, model: ModelVersion, before: ModelVersion,
                       rows: Rows, dropped: set[str], seed: int) -> list[Finding]:
    """What lies behind a drop: the rows added or relabeled since the previous model's
    training version whose label a model of that version's rows contradicts, on the
    dropped or confused classes; counted by annotator, batch, guideline version, ingest
    batch and origin. One ``slice`` finding (attribute ``changes``, action re-review) names
    those rows; a guideline version new since the previous version that holds most of them
    is a second finding (a guideline change request)."""
    from sklearn.linear_model import LogisticRegression

    item_ids, labels, x, slices = rows.item_ids, rows.labels, rows.x, rows.slices
    if before.train_version_id is None or before.train_version_id == model.train_version_id:
        return []
    old = dict(session.execute(select(DatasetRow.item_id, DatasetRow.label).where(
        DatasetRow.version_id == before.train_version_id)).tuples().all())
    changed = [i for i, (item, label) in enumerate(zip(item_ids, labels, strict=True))
               if old.get(item) != label]
    kept = [(item, label) for item, label in old.items()]
    vectors = load_embeddings(session, [item for item, _ in kept], model.encoder)
    kept = [(item, label) for item, label in kept if item in vectors]
    if not changed or len({label for _, label in kept}) < 2:
        return []
    reference = LogisticRegression(max_iter=300, random_state=seed).fit(
        np.stack([vectors[item] for item, _ in kept]), [label for _, label in kept])
    says = reference.predict(x[changed])
    suspect = [i for i, p in zip(changed, says, strict=True)
               if p != labels[i] and (p in dropped or labels[i] in dropped)]
    if len(suspect) < 3:
        return []
    said = dict(zip(changed, says, strict=True))
    pairs: dict[tuple[str, str], int] = {}
    for i in suspect:
        pairs[(labels[i], str(said[i]))] = pairs.get((labels[i], str(said[i])), 0) + 1
    behind: list[dict[str, Any]] = []
    for attribute, values in slices.items():
        counts: dict[Hashable, list[int]] = {}
        for i in changed:
            for v in values[i]:
                counts.setdefault(v, [0, 0])[1] += 1
        for i in suspect:
            for v in values[i]:
                counts[v][0] += 1
        for v, (k, n) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
            if k and k >= 0.2 * len(suspect):
                behind.append({"attribute": attribute, "value": _plain(v), "n_rows": k,
                               "share_of_suspects": round(k / len(suspect), 4),
                               "rate": round(k / n, 4)})
    old_version = session.get(DatasetVersion, before.train_version_id)
    name = old_version.name if old_version else str(before.train_version_id)
    top = sorted(pairs.items(), key=lambda kv: -kv[1])[:3]
    named = "; ".join(f"{b['attribute']} {b['value']} ({b['n_rows']})" for b in behind
                      if b["attribute"] != "origin")
    involved = tuple(dict.fromkeys(lb for (a, b), _ in top for lb in (a, b)))
    out = [Finding(
        FindingKind.SLICE, involved, round(len(suspect) / len(changed), 4),
        f"{len(suspect)} of {len(changed)} rows added or relabeled since {name} carry a label "
        f"a model of {name} contradicts ("
        + ", ".join(f"{a!r} where it says {b!r}: {c}" for (a, b), c in top)
        + f"); behind them: {named}",
        slice={"attribute": "changes", "value": f"since {name}"},
        evidence={"item_ids": [item_ids[i] for i in suspect[:MAX_EVIDENCE]],
                  "behind": behind, "n_changed": len(changed),
                  "pairs": [{"label": a, "predicted": b, "count": c} for (a, b), c in top]})]
    old_guidelines = set(session.scalars(select(DatasetRow.guideline_version).where(
        DatasetRow.version_id == before.train_version_id).distinct()))
    for b in behind:
        if b["attribute"] == "guideline_version" and b["share_of_suspects"] >= 0.8 \
                and b["value"] not in old_guidelines:
            out.append(Finding(
                FindingKind.SLICE, involved, b["rate"],
                f"guideline version {b['value']} came in since {name} and holds "
                f"{b['n_rows']} of the {len(suspect)} contradicted rows: does it say what "
                "was meant?", slice={"attribute": "guideline_version", "value": b["value"]},
                evidence={"item_ids": [item_ids[i] for i in suspect[:MAX_EVIDENCE]
                                       if b["value"] in slices["guideline_version"][i]]}))
    return out


def _plain(v: Hashable) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _explain_drops(found: list[Finding]) -> list[Finding]:
    """Each F1 drop and confusion names the slices whose disagreements involve its labels:
    the batches, the cohort and the guideline version behind it."""
    slices = [f for f in found if f.kind == FindingKind.SLICE]
    out = []
    for f in found:
        if f.kind in (FindingKind.F1_DROP, FindingKind.CONFUSION):
            behind = [b for s in slices if set(f.labels) & set(s.labels)
                      for b in s.evidence.get("behind", [])]
            behind += [{"attribute": s.slice["attribute"], "value": s.slice["value"],
                        "rate": s.figure} for s in slices
                       if set(f.labels) & set(s.labels) and "behind" not in s.evidence
                       and s.slice["attribute"] != "guideline_version"]
            if behind:
                named = "; ".join(f"{b['attribute']} {b['value']}" for b in behind[:6])
                f = Finding(f.kind, f.labels, f.figure, f"{f.message} (behind it: {named})",
                            f.baseline, f.slice, {**f.evidence, "behind": behind})
        out.append(f)
    return out


@dataclass
class Rows:
    """A model's training rows with cached vectors."""

    item_ids: list[int]
    labels: list[str]
    x: np.ndarray  # (n, d)
    slices: dict[str, list[tuple[Hashable, ...]]]  # each row's values of every attribute
    rereviewed: list[bool]  # the row's label came from a re-review


def _training_rows(session: Session, model: ModelVersion, seed: int) -> Rows | None:
    """The model's training rows with cached vectors; None when too few to judge."""
    if model.train_version_id is None:
        return None
    found = session.execute(
        select(DatasetRow.item_id, DatasetRow.label, DatasetRow.batch_id,
               DatasetRow.guideline_version, DatasetRow.origin, Item.ingest_batch_id,
               LabelEvent.annotators, LabelEvent.reason)
        .join(Item, Item.id == DatasetRow.item_id)
        .outerjoin(LabelEvent, LabelEvent.id == DatasetRow.label_event_id)
        .where(DatasetRow.version_id == model.train_version_id)
        .order_by(DatasetRow.item_id)).tuples().all()
    if len(found) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(found), MAX_ROWS, replace=False))
        found = [found[i] for i in keep]
    vectors = load_embeddings(session, [r[0] for r in found], model.encoder)
    found = [r for r in found if r[0] in vectors]
    if len(found) < 20 or len({r[1] for r in found}) < 2:
        return None
    slices: dict[str, list[tuple[Hashable, ...]]] = {a: [] for a in SLICE_ATTRIBUTES}
    for _item, _label, batch, guideline, origin, ingest, annotators, _reason in found:
        slices["annotator"].append(tuple(annotators or ()) or ("(model)",))
        slices["batch"].append((batch,) if batch is not None else ())
        slices["guideline_version"].append((guideline,) if guideline is not None else ())
        slices["ingest_batch"].append((ingest,))
        slices["origin"].append((origin or "given",))
    x = np.stack([vectors[r[0]] for r in found]).astype(np.float32)
    return Rows([r[0] for r in found], [r[1] for r in found], x, slices,
                [r[7] == LabelReason.REREVIEW for r in found])


def _left_out_predictions(x: np.ndarray, labels: list[str],
                          groups: Sequence[tuple[Hashable, ...]], seed: int) -> list[str]:
    """Each row's label as predicted by a logistic regression fitted on rows of other
    groups only (up to 5 folds of whole groups); a row whose fold has one class left keeps
    its own label (no evidence against it)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    keys = [repr(g) for g in groups]
    n_groups = len(set(keys))
    out = list(labels)
    if n_groups < 2:
        return out
    y = np.asarray(labels, dtype=object)
    folds = GroupKFold(n_splits=min(5, n_groups))
    for fit, held in folds.split(x, y, keys):
        if len(set(y[fit])) < 2:
            continue
        clf = LogisticRegression(max_iter=300, random_state=seed).fit(x[fit], y[fit])
        for i, p in zip(held, clf.predict(x[held]), strict=True):
            out[i] = str(p)
    return out


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
