"""Pre-label a project's items: embed once, predict with the active model, store predictions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelloop.core.errors import ConflictError, ValidationError
from labelloop.core.progress import Progress, silent
from labelloop.core.settings import Settings
from labelloop.prelabel import tuned
from labelloop.prelabel.arrays import lookup, model_arrays, write_blocks
from labelloop.prelabel.cache import embed_items, load_embeddings, store_vectors
from labelloop.prelabel.encoders import Encoder, load_checked, resolve_model_path
from labelloop.prelabel.heads import ClassifierHead, ZeroShotHead, label_prompt
from labelloop.store.db import open_session
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


def encoder_of(settings: Settings, model: ModelVersion | None) -> Encoder:
    """The encoder ``model`` reads: its own fine-tuned version (``prelabel.tuned``) when it
    was trained on one, else the one ``settings`` ask for."""
    if model is not None and tuned.is_tuned(model.encoder):
        return tuned.load(settings, model.encoder)
    return encoder_for(settings)


class LazyEncoder:
    """``settings``' encoder (or the tuned encoder ``tuned_key``), loaded on first use of
    ``dim`` or ``encode`` (seconds: torch and the weights). Its ``key`` needs no loading for
    fp32 torch, the default, nor for a tuned encoder; next-batch over a pool whose vectors
    are all cached never loads it."""

    def __init__(self, settings: Settings, tuned_key: str | None = None) -> None:
        self.settings = settings
        self.tuned_key = tuned_key if tuned.is_tuned(tuned_key) else None
        self._loaded: Encoder | None = None

    def load(self) -> Encoder:
        if self._loaded is None:
            self._loaded = (tuned.load(self.settings, self.tuned_key) if self.tuned_key
                            else encoder_for(self.settings))
        return self._loaded

    @property
    def key(self) -> str:
        s = self.settings
        if self.tuned_key:
            return self.tuned_key
        if s.runtime == "torch" and not s.quantize:  # load_checked returns it unchecked
            return s.encoder
        return self.load().key  # int8 or ONNX: the check decides which key

    @property
    def name(self) -> str:
        return self.tuned_key or self.settings.encoder

    @property
    def dim(self) -> int:
        return self.load().dim

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.load().encode(texts, batch_size=batch_size, progress=progress)


def distributed_encoder(settings: Settings, key: str | None = None,
                        ) -> Callable[[list[str]], np.ndarray] | None:
    """Ray's encode when ``settings.compute`` is ray; None: this process encodes (always
    for a tuned encoder ``key``: Ray's actors load the settings' encoder)."""
    if settings.compute != "ray" or tuned.is_tuned(key):
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


Record = Callable[[Session, int, int, int], None]  # (session, n_new, n_items, n_done)


@dataclass
class EmbedStep:
    encoder: str
    n_new: int
    n_items: int = 0  # items in the splits (0 when not counted)
    n_done: int = 0  # of them, with a vector for the encoder (these included)


def embed_chunk(settings: Settings, project_id: int, encoder: Encoder, *, limit: int,
                count: bool, record: Record,
                splits: tuple[str, ...] = ("pool", "gold", "eval")) -> EmbedStep:
    """One chunk of an embedding job: the first ``limit`` items of ``splits`` without a
    vector for ``encoder`` (a new one, or a fine-tuned version of the project's own), read,
    embedded with the database let go, then written with ``record`` (as
    :func:`prelabel_chunk`)."""
    in_splits = (Item.project_id == project_id, Item.split.in_(splits))
    cached = exists().where(Embedding.item_id == Item.id, Embedding.encoder == encoder.key)
    for _ in range(5):
        with open_session(settings.db_url, read_only=True) as s:
            rows = s.execute(select(Item.id, Item.text).where(*in_splits, ~cached)
                             .order_by(Item.id).limit(limit)).all()
            n_items = n_done = 0
            if count:
                n_items = s.scalar(select(func.count(Item.id)).where(*in_splits)) or 0
                n_done = s.scalar(select(func.count(Item.id)).where(*in_splits, cached)) or 0
        texts = [text for _, text in rows]
        distributed = distributed_encoder(settings) if encoder.name == settings.encoder \
            else None
        vectors = (distributed(texts) if distributed is not None and texts else
                   encoder.encode(texts, batch_size=settings.embed_batch_size))
        try:
            with open_session(settings.db_url) as s:
                store_vectors(s, encoder.key, [item_id for item_id, _ in rows], vectors)
                record(s, len(rows), n_items, n_done + len(rows) if count else 0)
        except IntegrityError:  # another writer cached some first: read the chunk again
            continue
        return EmbedStep(encoder.key, len(rows), n_items, n_done + len(rows) if count else 0)
    raise ConflictError(f"embedding project {project_id} kept colliding with another "
                        "writer", where="project")


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
    with 100k references reads back a ~150 MB neighbour index."""
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
    model = active_model(session, project, LazyEncoder(settings))
    encoder = encoder_of(settings, model)
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
                              encode=distributed_encoder(settings, encoder.key))
        probs = load_head(project, model, encoder).predict_proba(vectors)
        store_predictions(session, model, [it.id for it in items], probs, project.labels)
    seconds = time.perf_counter() - start
    n_items = n_done = 0
    if count:
        n_items = session.scalar(select(func.count(Item.id)).where(*in_splits)) or 0
        n_done = session.scalar(select(func.count(Item.id)).where(*in_splits, predicted)) or 0
    return PrelabelReport(model.id, model.name, n_items, len(items), seconds,
                          len(items) / seconds if seconds > 0 else 0.0, n_done)


CACHE_WRITE_ROWS = 128  # vectors per write: each holds SQLite's one writer ~10-20 ms


def prelabel_chunk(settings: Settings, project_id: int, *, limit: int, count: bool,
                   record: Record, splits: tuple[str, ...] = ("pool",)) -> PrelabelReport:
    """One chunk of a pre-labeling job: the first ``limit`` items of ``splits`` the active
    model has not predicted, holding the database only to read them and then to write.

    SQLite lets one writer in at a time, and a chunk's seconds of embedding must not hold
    it (every annotator's answer would wait behind it). ``record(session, n_new, n_items,
    n_done)`` runs in the writing unit of work, so the job's progress commits with the
    chunk; the totals only with ``count``. Items another writer predicted in the meantime
    make the chunk start over."""
    url = settings.db_url
    for _ in range(5):
        project, model = _model_of(settings, project_id, LazyEncoder(settings))
        encoder = encoder_of(settings, model)
        model_id, name, labels = model.id, model.name, list(project.labels)
        head = load_head(project, model, encoder)  # (zero-shot: encodes; no session held)
        rows, cached, n_items, n_done = _todo(settings, project_id, model_id, splits, limit,
                                              count, encoder.key)
        start = time.perf_counter()
        ids = [item_id for item_id, _ in rows]
        missing = [(item_id, text) for item_id, text in rows if item_id not in cached]
        if missing:
            texts = [text for _, text in missing]
            distributed = distributed_encoder(settings, encoder.key)
            vectors = (distributed(texts) if distributed is not None else
                       encoder.encode(texts, batch_size=settings.embed_batch_size))
            cached.update(zip([item_id for item_id, _ in missing], vectors, strict=True))
        probs = (head.predict_proba(np.stack([cached[i] for i in ids])) if ids
                 else np.zeros((0, len(labels))))
        seconds = time.perf_counter() - start
        try:
            for first in range(0, len(missing), CACHE_WRITE_ROWS):  # the cache: short writes
                part = [item_id for item_id, _ in missing[first:first + CACHE_WRITE_ROWS]]
                with open_session(url) as s:
                    store_vectors(s, encoder.key, part, [cached[i] for i in part])
            with open_session(url) as s:  # the predictions, with the job's progress
                model = s.get(ModelVersion, model_id)
                assert model is not None
                if ids:
                    store_predictions(s, model, ids, probs, labels)
                record(s, len(ids), n_items, n_done + len(ids) if count else 0)
        except IntegrityError:  # another writer got there first: read the chunk again
            continue
        return PrelabelReport(model_id, name, n_items, len(ids), seconds,
                              len(ids) / seconds if seconds > 0 else 0.0,
                              n_done + len(ids) if count else 0)
    raise ConflictError(f"pre-labeling project {project_id} kept colliding with another "
                        "writer", where="project")


def _model_of(settings: Settings, project_id: int, encoder: Encoder | LazyEncoder,
              ) -> tuple[Project, ModelVersion]:
    """The project and its active model, read; written (briefly) only when the zero-shot
    model's row does not exist yet."""
    with open_session(settings.db_url, read_only=True) as s:
        project = s.get(Project, project_id)
        assert project is not None
        model = (s.get(ModelVersion, project.active_model_id)
                 if project.active_model_id is not None else None)
        if model is not None:
            return project, model
    with open_session(settings.db_url) as s:
        project = s.get(Project, project_id)
        assert project is not None
        return project, active_model(s, project, encoder)


def _todo(settings: Settings, project_id: int, model_id: int, splits: tuple[str, ...],
          limit: int, count: bool, encoder_key: str,
          ) -> tuple[list[tuple[int, str]], dict[int, np.ndarray], int, int]:
    """(the next ``limit`` (id, text) not predicted by the model, their cached vectors,
    and with ``count`` the items in ``splits`` and those predicted), read without writing."""
    in_splits = (Item.project_id == project_id, Item.split.in_(splits))
    predicted = exists().where(Prediction.item_id == Item.id,
                               Prediction.model_version_id == model_id)
    with open_session(settings.db_url, read_only=True) as s:
        rows = [(int(i), t) for i, t in s.execute(select(Item.id, Item.text).where(
            *in_splits, ~predicted).order_by(Item.id).limit(limit))]
        cached = load_embeddings(s, [i for i, _ in rows], encoder_key)
        n_items = n_done = 0
        if count:
            n_items = s.scalar(select(func.count(Item.id)).where(*in_splits)) or 0
            n_done = s.scalar(select(func.count(Item.id)).where(*in_splits, predicted)) or 0
    return rows, cached, n_items, n_done


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
