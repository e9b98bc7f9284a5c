"""The neighbour-smoothing index a retrain's head reads (``prelabel.smoothing``), over one
encoder's vectors of the project's pool: a new index, or the live model's extended."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.settings import Settings
from labelloop.prelabel.cache import vectors_by_id
from labelloop.prelabel.encoders import Encoder
from labelloop.prelabel.recipe import DEFAULT
from labelloop.prelabel.service import load_head
from labelloop.prelabel.smoothing import MAX_REFERENCE, NeighbourSmoothing
from labelloop.store.models import Item, ModelVersion, Project
from labelloop.store.pages import id_array


def smoothing_for(session: Session, project: Project, settings: Settings, encoder: Encoder,
                  seed: int) -> NeighbourSmoothing | None:
    """Neighbour smoothing over a uniform sample of the project's pool items (labeled or not),
    or None when it is off (a fixed recipe with k 0) or the pool is too small to have k
    neighbours to spare. Its k is the settings' (the recipe reads the index with its own).

    When the project's current model has a smoothing over the same encoder, the new one
    extends a copy of its index with the pool items it lacks (a uniform sample of them
    while there is room under ``MAX_REFERENCE``): only new items are embedded and indexed."""
    k = settings.smoothing_k or DEFAULT.smoothing_k
    if settings.recipe == "fixed" and settings.smoothing_k == 0:
        return None
    ids = id_array(session, select(Item.id).where(Item.project_id == project.id,
                                                  Item.split == "pool"))
    if len(ids) <= 2 * k:
        return None
    previous = _previous(session, project, encoder, k)
    if previous is not None and previous.item_ids is not None and bool(
            np.isin(previous.item_ids, ids).all()):
        fresh = np.setdiff1d(ids, previous.item_ids)
        room = max(0, MAX_REFERENCE - previous.n_reference)
        if len(fresh) > room:
            rng = np.random.default_rng(seed)
            fresh = np.sort(rng.choice(fresh, room, replace=False))
        if not len(fresh):
            return previous
        return previous.extended(_item_vectors(session, settings, encoder, fresh), fresh)
    if len(ids) > MAX_REFERENCE:
        rng = np.random.default_rng(seed)
        ids = np.sort(rng.choice(ids, MAX_REFERENCE, replace=False))
    return NeighbourSmoothing(_item_vectors(session, settings, encoder, ids), k=k, seed=seed,
                              item_ids=ids)


def _item_vectors(session: Session, settings: Settings, encoder: Encoder,
                  ids: np.ndarray) -> np.ndarray:
    return vectors_by_id(session, ids.tolist(), encoder,
                         batch_size=settings.embed_batch_size)


def _previous(session: Session, project: Project, encoder: Encoder,
              k: int) -> NeighbourSmoothing | None:
    """The smoothing of the project's current model, read with ``k`` neighbours, if it can be
    extended: a trained head over this encoder, whose file is there."""
    model = session.get(ModelVersion, project.active_model_id) if project.active_model_id \
        else None
    if (model is None or model.kind == "zero-shot" or not model.artifact_path
            or model.encoder != encoder.key
            or not Path(model.artifact_path).is_file()):
        return None
    head = load_head(project, model, encoder)
    smoothing = getattr(head, "smoothing", None)
    if smoothing is None or k >= smoothing.n_reference:
        return None
    return smoothing.with_k(k)
