"""Pre-label a project's items: embed once, predict with the active model, store predictions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session

from labelloop.core.errors import ValidationError
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel.arrays import lookup, model_arrays, write_blocks
from labelloop.prelabel.cache import embed_items
from labelloop.prelabel.encoders import Encoder, load_checked, resolve_model_path
from labelloop.prelabel.heads import ClassifierHead, ZeroShotHead, label_prompt
from labelloop.store.models import Embedding, Item, ModelVersion, Prediction, Project


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


class LazyEncoder:
    """``settings``' encoder, loaded on first use of ``dim`` or ``encode`` (seconds: torch
    and the weights). Its ``key`` needs no loading for fp32 torch, the default; next-batch
    over a pool whose vectors are all cached never loads it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: Encoder | None = None

    def load(self) -> Encoder:
        if self._loaded is None:
            self._loaded = encoder_for(self.settings)
        return self._loaded

    @property
    def key(self) -> str:
        s = self.settings
        if s.runtime == "torch" and not s.quantize:  # load_checked returns it unchecked
            return s.encoder
        return self.load().key  # int8 or ONNX: the check decides which key

    @property
    def name(self) -> str:
        return self.settings.encoder

    @property
    def dim(self) -> int:
        return self.load().dim

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.load().encode(texts, batch_size=batch_size, progress=progress)


def distributed_encoder(settings: Settings) -> Callable[[list[str]], np.ndarray] | None:
    """Ray's encode when ``settings.compute`` is ray; None: this process encodes."""
    if settings.compute != "ray":
        return None
    from labelloop.prelabel.distributed import embed_texts

    return lambda texts: embed_texts(texts, settings)


def encoder_named(settings: Settings, name: str | None) -> Encoder:
    """The encoder ``name`` (the packaged MiniLM or a local model folder), run as
    ``settings`` say; ``settings.encoder`` when None. ValidationError (where="encoder") for
    a name that is neither: nothing is downloaded."""
    if name is None:
        return encoder_for(settings)
    check_encoder(name)
    return load_checked(name, settings.runtime, settings.quantize, settings.device)


def check_encoder(name: str) -> None:
    """ValidationError (where="encoder") unless ``name`` is the packaged MiniLM or a local
    model folder."""
    try:
        resolve_model_path(name)
    except ValidationError as exc:
        raise ValidationError(exc.message, where="encoder") from None


@dataclass
class EmbedStep:
    encoder: str
    n_new: int
    n_items: int = 0  # items in the splits (0 when not counted)
    n_done: int = 0  # of them, with a vector for the encoder (these included)


def embed_project(session: Session, project: Project, settings: Settings, encoder: Encoder, *,
                  splits: tuple[str, ...] = ("pool", "gold", "eval"), limit: int | None = None,
                  count: bool = True) -> EmbedStep:
    """Embed (into the cache) the first ``limit`` items of ``splits`` that have no vector
    for ``encoder`` yet: a chunk of an embedding job, for an encoder the project is about to
    use (a new one, or a fine-tuned version of its own)."""
    in_splits = (Item.project_id == project.id, Item.split.in_(splits))
    cached = exists().where(Embedding.item_id == Item.id, Embedding.encoder == encoder.key)
    todo = select(Item).where(*in_splits, ~cached).order_by(Item.id)
    items = list(session.scalars(todo.limit(limit) if limit is not None else todo))
    if items:
        embed_items(session, items, encoder, batch_size=settings.embed_batch_size,
                    encode=distributed_encoder(settings) if encoder.name == settings.encoder
                    else None)
    step = EmbedStep(encoder.key, len(items))
    if count:
        step.n_items = session.scalar(select(func.count(Item.id)).where(*in_splits)) or 0
        step.n_done = session.scalar(select(func.count(Item.id)).where(*in_splits, cached)) or 0
    return step


def zero_shot_head(project: Project, encoder: Encoder | LazyEncoder) -> ZeroShotHead:
    prompts = [label_prompt(lb, project.label_descriptions.get(lb)) for lb in project.labels]
    return ZeroShotHead(labels=list(project.labels), prototypes=encoder.encode(prompts))


def active_model(session: Session, project: Project,
                 encoder: Encoder | LazyEncoder) -> ModelVersion:
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


def load_head(project: Project, model: ModelVersion, encoder: Encoder | LazyEncoder,
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
