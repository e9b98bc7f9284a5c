"""``next_batch``: route the unlabeled pool, auto-accept what is safe, pick what humans see."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from labelloop.core.enums import (
    BatchStatus,
    LabelOrigin,
    LabelReason,
    TargetAction,
    TargetStatus,
    TaskStatus,
)
from labelloop.core.errors import ConflictError, EmptyPoolError, ValidationError
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel.arrays import StoredVectors, lookup, model_arrays
from labelloop.prelabel.cache import embed_items, vectors_by_id
from labelloop.prelabel.service import (
    LazyEncoder,
    active_model,
    load_head,
    pool_predictions,
    prelabel_project,
)
from labelloop.selection.calibration import model_thresholds
from labelloop.selection.routing import AUDIT, AUTO_ACCEPT, CALIBRATION, RoutingPolicy, route
from labelloop.selection.strategies import Pool, get_strategy
from labelloop.store.db import open_session
from labelloop.store.labels import NewLabel, record_labels
from labelloop.store.models import (
    Batch,
    FinalLabel,
    Item,
    ModelVersion,
    Project,
    RemediationTarget,
    Task,
)
from labelloop.store.pages import id_array


@dataclass
class BatchReport:
    batch_id: int
    strategy: str
    model_version_id: int
    n_pool: int
    n_tasks: int
    n_auto_accepted: int
    reasons: dict[str, int] = field(default_factory=dict)
    selection_seconds: float = 0.0
    class_boost: dict[str, float] = field(default_factory=dict)  # the boosts applied

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _unlabeled(project: Project) -> tuple[Any, ...]:
    """Pool items with no label (final or arrived with the data), no open task and in no
    open batch (an answered task's item waits there for its batch's QA)."""
    labeled = select(FinalLabel.item_id)
    in_open_task = select(Task.item_id).join(Batch, Batch.id == Task.batch_id).where(
        or_(Task.status == TaskStatus.OPEN, Batch.status == BatchStatus.OPEN))
    return (Item.project_id == project.id, Item.split == "pool", Item.given_label.is_(None),
            Item.id.not_in(labeled), Item.id.not_in(in_open_task))


def unlabeled_pool(session: Session, project: Project) -> list[Item]:
    """The unlabeled pool's items, by id."""
    return list(session.scalars(select(Item).where(*_unlabeled(project)).order_by(Item.id)))


def unlabeled_ids(session: Session, project: Project) -> np.ndarray:
    """The unlabeled pool's item ids (n,) int64, ascending: what next-batch reads at a
    million items (no row objects)."""
    return id_array(session, select(Item.id).where(*_unlabeled(project)))


def warm_caches(settings: Settings) -> int:
    """Read what a next-batch reads first into this process's caches: each project's active
    model's predictions (``model_arrays``; a request arriving meanwhile waits for this read
    instead of repeating it) and the selection code's imports. A server runs it in a thread
    at start. Returns how many models it read."""
    import faiss  # noqa: F401  (the diversity step's first import costs about a second)

    n = 0
    with open_session(settings.db_url, read_only=True) as session:
        for project in session.scalars(select(Project).where(
                Project.active_model_id.is_not(None))).all():
            model = session.get(ModelVersion, project.active_model_id)
            if model is not None:
                model_arrays(session, model, project.labels)
                n += 1
    return n


def routing_policy(project: Project, model: ModelVersion, allow_auto: bool) -> RoutingPolicy:
    """Auto-accept needs a trained model with calibrated thresholds; the project's
    ``confidence_threshold`` is a floor under every calibrated threshold."""
    index = {label: i for i, label in enumerate(project.labels)}
    thresholds = model_thresholds(model, project) if allow_auto else None
    if thresholds is not None:
        floor = project.confidence_threshold
        thresholds = replace(thresholds,
                             global_threshold=max(thresholds.global_threshold, floor),
                             per_class={c: max(t, floor) for c, t in
                                        thresholds.per_class.items()})
    return RoutingPolicy(
        thresholds=thresholds,
        critical=np.array([index[c] for c in project.critical_labels], dtype=int),
        critical_plausibility=project.critical_plausibility, audit_share=project.audit_share,
        overlap=project.overlap, critical_overlap=project.critical_overlap)


MAX_BATCH_SIZE = 100_000


def lock_project(session: Session, project: Project) -> None:
    """Hold the project's row until this unit of work ends: a second next-batch of the same
    project waits here, then sees the first one's tasks (so no item lands in two open
    batches). SQLite's write transactions already run one at a time."""
    session.execute(select(Project.id).where(Project.id == project.id)
                    .with_for_update(key_share=True))


def next_batch(session: Session, project: Project, settings: Settings, *, size: int,
               strategy: str = "default", auto_accept: bool = True, seed: int | None = None,
               class_boost: dict[str, float] | None = None,
               progress: Progress = silent, prelabel_limit: int | None = None) -> BatchReport:
    """Make the next labeling batch.

    Every unlabeled pool item is routed (see ``selection.routing``). Confident, non-critical
    items are auto-accepted into this batch (only once a trained classifier with calibrated
    thresholds pre-labels: zero-shot confidence is not trusted), an audit share of them
    becomes human tasks, and ``size`` more items go to humans: a random
    ``project.calibration_share`` of them drawn uniformly from the non-critical pool (the
    unbiased sample the next model's auto-accept thresholds are calibrated on), the rest
    picked by ``strategy`` among the items routed to humans.

    ``class_boost`` weights labels for the strategies that read it ("default",
    "class-balance"); None takes the boosts of the project's remediation targets in force
    (``target_boost``), ``{}`` none.

    Items the active model has not predicted are pre-labeled first, here; more than
    ``prelabel_limit`` of them raises ConflictError (a pre-labeling job's work).
    """
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise ValidationError(f"batch size must lie in [1, {MAX_BATCH_SIZE}], got {size}",
                              where="size")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValidationError(f"seed must lie in [0, 2**32), got {seed}", where="seed")
    chooser = get_strategy(strategy)  # unknown names fail before any work
    lock_project(session, project)  # one next-batch at a time per project
    model = active_model(session, project, LazyEncoder(settings))
    encoder = LazyEncoder(settings, model.encoder)  # loaded only if a vector is missing
    _prelabel_missing(session, project, settings, model, prelabel_limit, progress)
    ids = unlabeled_ids(session, project)
    if not ids.size:
        raise EmptyPoolError(f"project {project.name!r} has no unlabeled pool items",
                             where="pool")
    probs = pool_predictions(session, model, ids, project.labels)
    gaps = np.flatnonzero(np.isnan(probs).any(axis=1)) if probs.size else ids[:0]
    if gaps.size:  # fewer predictions than counted after all: fill in the missing ones
        _prelabel_ids(session, project, settings, ids[gaps], prelabel_limit, progress)
        probs = pool_predictions(session, model, ids, project.labels)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    policy = routing_policy(project, model, allow_auto=auto_accept)
    # The random calibration sample is part of the batch's ``size``, not on top of it.
    n_calibration = min(size - 1, int(round(project.calibration_share * size)))
    routes = route(probs, policy, rng, n_calibration=n_calibration)

    batch = Batch(project_id=project.id, strategy=strategy, model_version_id=model.id,
                  guideline_version=project.guideline_version)
    session.add(batch)
    session.flush()
    auto = np.flatnonzero(routes.reason == AUTO_ACCEPT)
    _auto_accept(session, batch, project, ids[auto].tolist(), probs[auto])
    audit = np.flatnonzero(routes.reason == AUDIT)
    calibration = np.flatnonzero(routes.reason == CALIBRATION)
    human = np.flatnonzero(routes.human & (routes.reason != AUDIT) &
                           (routes.reason != CALIBRATION))

    picked = np.zeros(0, dtype=int)
    if class_boost is None:
        class_boost = target_boost(session, project)
    if human.size:
        # The vectors are read on demand: the default strategy reads its candidates' only.
        vectors = StoredVectors(ids[human], lambda: encoder.dim,
                                lambda some: vectors_by_id(session, some, encoder))
        # Only strategies that measure distance to the labeled set pay for loading it.
        labeled = (_labeled_vectors(session, project, encoder)
                   if getattr(chooser, "needs_labeled", False) else None)
        boost = None
        if class_boost:
            boost = np.array([class_boost.get(lb, 1.0) for lb in project.labels])
        # Cold start: zero-shot confidences are uncalibrated and their margins cluster on a few
        # confusable label pairs, so the default strategy picks by diversity alone until a
        # trained model exists.
        cold = model.kind == "zero-shot" and strategy == "default"
        module = None
        if getattr(chooser, "needs_model", False):
            # MC-dropout strategies sample the pre-labeler's own linear map, so they read the
            # features that map reads (neighbour-smoothed embeddings for a trained head).
            head = load_head(project, model, encoder)
            vectors, module = head.features(np.asarray(vectors)), head.dropout_module()
        pool = Pool(probs=None if cold else probs[human], embeddings=vectors,
                    labeled_embeddings=labeled, class_boost=boost, model=module)
        picked = human[chooser.select(pool, min(size - calibration.size, human.size), rng)]
    seconds = time.perf_counter() - start
    order = np.concatenate([picked, calibration, audit])
    for rank, i in enumerate(order):
        top = int(np.argmax(probs[i]))
        session.add(Task(batch_id=batch.id, item_id=int(ids[i]), reason=str(routes.reason[i]),
                         required=int(routes.required[i]), prelabel=project.labels[top],
                         prelabel_confidence=float(probs[i, top]), score=float(-rank)))
    session.flush()
    return BatchReport(batch.id, strategy, model.id, len(ids), len(order), len(auto),
                       dict(Counter(str(routes.reason[i]) for i in order)), seconds,
                       dict(class_boost))


def target_boost(session: Session, project: Project) -> dict[str, float]:
    """The class boosts of the project's remediation targets in force (action boost, not
    yet closed or dismissed): a label named by several gets the largest."""
    out: dict[str, float] = {}
    for labels, boost in session.execute(select(
            RemediationTarget.labels, RemediationTarget.boost).where(
            RemediationTarget.project_id == project.id,
            RemediationTarget.action == TargetAction.BOOST,
            RemediationTarget.status.in_((TargetStatus.OPEN, TargetStatus.ACTING,
                                          TargetStatus.ADDRESSED)))):
        for label in labels:
            if label in project.labels:
                out[label] = max(out.get(label, 1.0), float(boost))
    return out


def _prelabel_missing(session: Session, project: Project, settings: Settings,
                      model: ModelVersion, limit: int | None, progress: Progress) -> None:
    """Pre-label, here, the pool and gold items the active model has not predicted: all of
    the pool, as a pre-labeling job does (the QA's label-error scan reads the labeled
    items' cached vectors), and gold (a stale pre-label would give them away). More than
    ``limit`` of them is a pre-labeling job's work, not a request's: ConflictError."""
    in_splits = (Item.project_id == project.id, Item.split.in_(("pool", "gold")))
    known = model_arrays(session, model, project.labels)
    # A model predicts pool and gold items only, and items are never removed: as many
    # predictions as items means none is missing (a count, not a million ids).
    if len(known.item_ids) >= (session.scalar(select(func.count(Item.id))
                                              .where(*in_splits)) or 0):
        return
    wanted = id_array(session, select(Item.id).where(*in_splits))
    _prelabel_ids(session, project, settings, wanted[~lookup(known, wanted)[1]], limit,
                  progress)


def _prelabel_ids(session: Session, project: Project, settings: Settings,
                  missing: np.ndarray, limit: int | None, progress: Progress) -> None:
    if not missing.size:
        return
    if limit is not None and missing.size > limit:
        raise ConflictError(
            f"{missing.size} items of project {project.name!r} have no pre-label from its "
            f"model yet (more than the {limit} a request pre-labels): run a pre-labeling job "
            f"first (POST /projects/{project.name}/prelabel, or `labelloop prelabel`)",
            where="pool")
    prelabel_project(session, project, settings, splits=("pool", "gold"), progress=progress,
                     count=False, item_ids=missing.tolist())


def _auto_accept(session: Session, batch: Batch, project: Project, item_ids: list[int],
                 probs: np.ndarray) -> None:
    tops = np.argmax(probs, axis=1) if len(item_ids) else np.zeros(0, dtype=int)
    record_labels(session, [
        NewLabel(item_id, project.labels[top], by=f"model:{batch.model_version_id}",
                 reason=LabelReason.AUTO_ACCEPT, origin=LabelOrigin.AUTO, batch_id=batch.id,
                 posterior={project.labels[top]: float(p[top])},
                 model_version_id=batch.model_version_id,
                 guideline_version=project.guideline_version)
        for item_id, p, top in zip(item_ids, probs, tops.tolist(), strict=True)])
    batch.n_auto_accepted = len(item_ids)
    session.flush()


def _labeled_vectors(session: Session, project: Project, encoder) -> np.ndarray | None:  # noqa: ANN001
    labeled = list(session.scalars(select(Item).join(FinalLabel, FinalLabel.item_id == Item.id)
                                   .where(Item.project_id == project.id)))
    if not labeled:
        return None
    return embed_items(session, labeled, encoder)
