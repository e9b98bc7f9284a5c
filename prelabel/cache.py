"""The embedding cache: an item's vector is computed once per encoder and kept in the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import BigInteger, any_, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from labelloop.prelabel.encoders import Encoder
from labelloop.store.db import is_read_only, write_beside
from labelloop.store.models import Embedding, Item


def load_embeddings(session: Session, item_ids: Sequence[int], encoder_key: str,
                    ) -> dict[int, np.ndarray]:
    """Cached vectors for ``item_ids`` (missing ones are simply absent). On PostgreSQL the
    ids go as one array parameter (10,000 ids: 0.2 s less than an IN list, which psycopg
    parses parameter by parameter); SQLite takes them 900 at a time."""
    found: dict[int, np.ndarray] = {}
    ids = [int(i) for i in item_ids]
    postgres = session.get_bind().dialect.name == "postgresql"
    step = max(len(ids), 1) if postgres else 900
    for start in range(0, len(ids), step):
        chunk = ids[start:start + step]
        match = (Embedding.item_id == any_(bindparam("ids", chunk, type_=ARRAY(BigInteger)))
                 if postgres else Embedding.item_id.in_(chunk))
        rows = session.execute(select(Embedding.item_id, Embedding.vector).where(
            Embedding.encoder == encoder_key, match))
        for item_id, blob in rows:
            found[item_id] = np.frombuffer(blob, dtype=np.float32)
    return found


def embed_items(session: Session, items: Sequence[Item], encoder: Encoder, *,
                batch_size: int = 64, progress: Callable[[int], None] | None = None,
                encode: Callable[[list[str]], np.ndarray] | None = None) -> np.ndarray:
    """Vectors for ``items`` in order, shape (len(items), dim); computes only the missing
    ones, with ``encoder`` here or with ``encode`` (Ray: ``prelabel.distributed``)."""
    cached = load_embeddings(session, [it.id for it in items], encoder.key)
    missing = [it for it in items if it.id not in cached]
    if progress is not None and len(items) > len(missing):
        progress(len(items) - len(missing))
    if missing:
        texts = [it.text for it in missing]
        if encode is not None:
            vectors = encode(texts)
            if progress is not None:
                progress(len(texts))
        else:
            vectors = encoder.encode(texts, batch_size=batch_size, progress=progress)
        store_vectors(session, encoder.key, [it.id for it in missing], vectors)
        cached.update({it.id: vec for it, vec in zip(missing, vectors, strict=True)})
    if not items:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([cached[it.id] for it in items]).astype(np.float32, copy=False)


def store_vectors(session: Session, encoder_key: str, item_ids: Sequence[int],
                  vectors: np.ndarray) -> None:
    """Cache ``vectors`` (n, dim) of ``item_ids`` under ``encoder_key``: one bulk insert.
    From a read-only unit of work (a training job computing) they are kept at once in a
    short unit of work of their own; a vector another process cached meanwhile stays."""
    if not len(item_ids):
        return
    rows = [{"item_id": int(item_id), "encoder": encoder_key, "dim": int(vec.shape[0]),
             "vector": np.asarray(vec, dtype=np.float32).tobytes()}
            for item_id, vec in zip(item_ids, vectors, strict=True)]
    if not is_read_only(session):
        session.execute(insert(Embedding), rows)
        return
    with write_beside(session) as w:
        dialect = w.get_bind().dialect.name
        new = (postgresql.insert(Embedding) if dialect == "postgresql"
               else sqlite.insert(Embedding))
        w.execute(new.on_conflict_do_nothing(), rows)


def vectors_by_id(session: Session, item_ids: Sequence[int], encoder: Encoder,
                  batch_size: int = 64) -> np.ndarray:
    """Vectors for ``item_ids`` in order (n, dim) float32: cached rows by primary key, the
    rest embedded now (and cached)."""
    ids = list(item_ids)
    cached = load_embeddings(session, ids, encoder.key)
    missing = [i for i in ids if i not in cached]
    if missing:
        items = [it for start in range(0, len(missing), 900) for it in session.scalars(
            select(Item).where(Item.id.in_(missing[start:start + 900])))]
        cached.update(zip([it.id for it in items],
                          embed_items(session, items, encoder, batch_size=batch_size),
                          strict=True))
    if not ids:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([cached[i] for i in ids]).astype(np.float32, copy=False)
