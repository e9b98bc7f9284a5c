"""Pre-label a project's items: embed once, predict with the active model, store predictions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session

from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel.arrays import lookup, model_arrays, write_blocks
from labelloop.prelabel.cache import embed_items
from labelloop.prelabel.encoders import Encoder, load_checked
from labelloop.prelabel.heads import ClassifierHead, ZeroShotHead, label_prompt
from labelloop.store.models import Item, ModelVersion, Prediction, Project


@dataclass
class PrelabelReport:
    model_version_id: int
    model_name: str
    n_items: int
    n_new: int
    seconds: float
    items_per_second: float
    n_done: int = 0

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def encoder_for(settings: Settings) -> Encoder:
    """The encoder ``settings`` ask for: runtime and int8 only where they keep fp32's vectors."""
    return load_checked(settings.encoder, settings.runtime, settings.quantize, settings.device)


def distributed_encoder(settings: Settings) -> Callable[[list[str]], np.ndarray] | None:
    """Ray's encode when ``settings.compute`` is ray; None: this process encodes."""
    if settings.compute != "ray":
        return None
    from labelloop.prelabel.distributed import embed_texts

    return lambda texts: embed_texts(texts, settings)


def zero_shot_head(project: Project, encoder: Encoder) -> ZeroShotHead:
    prompts = [label_prompt(lb, project.label_descriptions.get(lb)) for lb in project.labels]
    return ZeroShotHead(labels=list(project.labels), prototypes=encoder.encode(prompts))


def active_model(session: Session, project: Project, encoder: Encoder) -> ModelVersion:
    """The project's pre-labeler: the newest trained model, else a zero-shot model."""
    if project.active_model_id is not None:
        model = session.get(ModelVersion, project.active_model_id)
        if model is not None:
            return model
    name = f"zero-shot/{encoder.key}/guideline-{project.guideline_version}"
    model = session.scalar(select(ModelVersion).where(
        ModelVersion.project_id == project.id, ModelVersion.name == name))
    if model is None:
        model = ModelVersion(project_id=project.id, name=name, kind="zero-shot",
                             encoder=encoder.key)
        session.add(model)
        session.flush()
    project.active_model_id = model.id
    session.flush()
    return model


def load_head(project: Project, model: ModelVersion, encoder: Encoder,
              ) -> ZeroShotHead | ClassifierHead:
    if model.kind == "zero-shot":
        return zero_shot_head(project, encoder)
    if not model.artifact_path:
        raise RuntimeError(f"model version {model.id} has no stored head")
    stat = Path(model.artifact_path).stat()
    return _stored_head(model.artifact_path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _stored_head(path: str, mtime_ns: int, size: int) -> ClassifierHead:
    """A stored head, loaded once per file version (path, mtime, size): a smoothed head
    rebuilds its neighbour index on load, seconds at 100k references."""
    return ClassifierHead.load(path)


def prelabel_project(session: Session, project: Project, settings: Settings, *,
                     splits: tuple[str, ...] = ("pool",), progress: Progress = silent,
                     limit: int | None = None, count: bool = True,
                     item_ids: list[int] | None = None) -> PrelabelReport:
    """Predict the items in ``splits`` that the active model has not predicted yet: all of
    them, the first ``limit`` by id (a job's chunk; run again, it takes the next), or only
    those of ``item_ids``.

    ``n_items`` counts the items in ``splits``; ``n_done`` those the model has predicted,
    these included (both 0 with ``count=False``: a job's later chunks keep their own tally
    rather than count the whole pool again)."""
    encoder = encoder_for(settings)
    model = active_model(session, project, encoder)
    in_splits = (Item.project_id == project.id, Item.split.in_(splits))
    predicted = exists().where(Prediction.item_id == Item.id,
                               Prediction.model_version_id == model.id)
    todo = select(Item).where(*in_splits, ~predicted).order_by(Item.id)
    if item_ids is not None:
        items = [it for start in range(0, len(item_ids), 900)
                 for it in session.scalars(todo.where(Item.id.in_(item_ids[start:start + 900])))]
    else:
        items = list(session.scalars(todo.limit(limit) if limit is not None else todo))
    start = time.perf_counter()
    if items:
        vectors = embed_items(session, items, encoder, batch_size=settings.embed_batch_size,
                              progress=progress(f"embed ({encoder.key})", len(items)),
                              encode=distributed_encoder(settings))
        probs = load_head(project, model, encoder).predict_proba(vectors)
        store_predictions(session, model, [it.id for it in items], probs, project.labels)
    seconds = time.perf_counter() - start
    n_items = n_done = 0
    if count:
        n_items = session.scalar(select(func.count(Item.id)).where(*in_splits)) or 0
        n_done = session.scalar(select(func.count(Item.id)).where(*in_splits, predicted)) or 0
    return PrelabelReport(model.id, model.name, n_items, len(items), seconds,
                          len(items) / seconds if seconds > 0 else 0.0, n_done)


def store_predictions(session: Session, model: ModelVersion, item_ids: list[int],
                      probs: np.ndarray, labels: list[str]) -> None:
    """Bulk insert: one row per item (probabilities keyed by label name, rounded to 5
    decimals to keep rows small), and the same figures as compact blocks for next-batch
    (``prelabel.arrays``), in the same unit of work."""
    top = probs.argmax(axis=1)
    rows = [{"item_id": item_id, "model_version_id": model.id, "label": labels[int(k)],
             "confidence": float(p[k]),
             "probs": dict(zip(labels, np.round(p, 5).tolist(), strict=True))}
            for item_id, p, k in zip(item_ids, probs, top, strict=True)]
    for start in range(0, len(rows), 2000):
        session.execute(insert(Prediction), rows[start:start + 2000])
    write_blocks(session, model, item_ids, probs, labels)
    session.flush()


def pool_predictions(session: Session, model: ModelVersion, item_ids: list[int] | np.ndarray,
                     labels: list[str]) -> np.ndarray:
    """Stored probabilities for ``item_ids`` in order, columns in ``labels`` order (a label
    the model did not know gets 0), shape (n, len(labels)); NaN rows if absent. Read from
    the model's prediction blocks (``prelabel.arrays``)."""
    return lookup(model_arrays(session, model, labels), np.asarray(item_ids, dtype=np.int64))[0]
