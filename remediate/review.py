"""Evaluation findings for one model, read from the store (``remediate.targets`` has the
pure tests).

:func:`review_model` compares the model's evaluation with the previous model's on the same
evaluation version (F1 drops, confusion rises); for a drop it names what lies behind it --
the rows added or relabeled since the previous model's training version that a model of
that version contradicts, counted by annotator, batch, guideline version, ingest batch and
origin; it tests slices of the training rows by leaving them out (each group predicted by a
logistic regression fitted on the other groups, ``GroupKFold``, so a deviant annotator among
many stands out however many rows they labeled); and it lists suspected label errors
(confident learning). It only reads: the training job runs it before its writing unit of
work (``remediate.service.record_review``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.enums import FindingKind, LabelReason
from labelloop.core.errors import ValidationError
from labelloop.prelabel.cache import load_embeddings
from labelloop.quality.review import scan_labels
from labelloop.remediate.targets import (
    ALPHA,
    MIN_LIFT,
    Finding,
    confusion_rises,
    f1_drops,
    slice_findings,
)
from labelloop.store.models import (
    DatasetRow,
    DatasetVersion,
    Item,
    LabelEvent,
    ModelVersion,
    Project,
)

MAX_ROWS = 20_000  # training rows a review reads at most (a uniform sample beyond)
MAX_EVIDENCE = 500  # items a target names at most
MIN_SUSPECTS = 5  # fewer suspected label errors are not worth a target
MIN_CLASS_ROWS = 10  # rows a class needs before its labels are judged
SLICE_ATTRIBUTES = ("annotator", "batch", "guideline_version", "ingest_batch", "origin")


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
        # Batches and guideline versions follow time, and later batches hold harder items
        # (auto-accept takes the easy ones): against each other they differ by selection
        # alone, so they are judged by the attribution above, against a baseline, not here.
        slices = {a: g for a, g in slices.items() if len({repr(v) for v in g}) >= 3
                  and a not in ("batch", "guideline_version")}
        predicted = {a: _left_out_predictions(x, labels, groups, seed)
                     for a, groups in slices.items()}
        # Re-reviewed rows were picked because a model doubted them: their slices (the
        # reviewers, the re-review batch) would stand out for that alone, so they are not
        # tested (they still train the models that test the others).
        # Auto-accepted rows are the model's own answers and agree with models by design;
        # rows given with the data are not anyone's work: neither is tested.
        tested = [i for i, again in enumerate(rows.rereviewed) if not again
                  and rows.slices["origin"][i][0] not in ("auto", "given")]
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
        # Confident learning needs examples of a class to judge its labels: suspects of
        # classes with fewer than MIN_CLASS_ROWS rows are not raised.
        sizes = Counter(labels)
        issues = np.asarray([i for i in issues if sizes[labels[i]] >= MIN_CLASS_ROWS],
                            dtype=np.int64)
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
    batch and origin. It counts only when those contradictions are more frequent than the
    same model's own out-of-fold disagreement on the same classes in its own rows (by
    ``MIN_LIFT`` and a one-sided binomial test at ``ALPHA``): new rows are always somewhat
    harder, a cohort labeling a class its own way is far beyond that. One ``slice`` finding
    (attribute ``changes``, action re-review) names those rows; a guideline version new
    since the previous version that holds most of them is a second finding (a guideline
    change request)."""
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

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
    x_old = np.stack([vectors[item] for item, _ in kept])
    y_old = np.asarray([label for _, label in kept], dtype=object)
    reference = LogisticRegression(max_iter=300, random_state=seed).fit(x_old, y_old)
    says = reference.predict(x[changed])
    relevant = [i for i, p in zip(changed, says, strict=True)
                if p in dropped or labels[i] in dropped]
    suspect = [i for i, p in zip(changed, says, strict=True)
               if p != labels[i] and (p in dropped or labels[i] in dropped)]
    if len(suspect) < 3:
        return []
    # the reference's own disagreement on those classes, out of fold in its own rows
    oof = y_old.copy()
    for fit, held in KFold(min(5, len(y_old)), shuffle=True, random_state=seed).split(x_old):
        if len(set(y_old[fit])) >= 2:
            oof[held] = LogisticRegression(max_iter=300, random_state=seed).fit(
                x_old[fit], y_old[fit]).predict(x_old[held])
    mine = [(t, p) for t, p in zip(y_old, oof, strict=True) if t in dropped or p in dropped]
    base = sum(t != p for t, p in mine) / len(mine) if mine else 0.0
    rate = len(suspect) / len(relevant)
    if rate - base < MIN_LIFT or binomtest(len(suspect), len(relevant), min(max(base, 1e-3),
                                                                           0.999),
                                           alternative="greater").pvalue >= ALPHA:
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
        f"{len(suspect)} of {len(relevant)} rows on these classes added or relabeled since "
        f"{name} carry a label a model of {name} contradicts ({rate:.0%}, against {base:.0%} "
        "in its own rows out of fold; "
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
    the batches, the cohort and the guideline version behind it. Where the rows changed
    since the previous model account for it (``_attribute_changes``), those are what lies
    behind; deviant slices of the whole version are named only when they do not: a cohort
    that relabels a class makes the annotators who kept to the old labels look deviant in
    the new version, though none of their rows changed."""
    slices = [f for f in found if f.kind == FindingKind.SLICE]
    out = []
    for f in found:
        if f.kind in (FindingKind.F1_DROP, FindingKind.CONFUSION):
            behind = [b for s in slices if set(f.labels) & set(s.labels)
                      for b in s.evidence.get("behind", [])]
            if not behind:
                behind = [{"attribute": s.slice["attribute"], "value": s.slice["value"],
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
