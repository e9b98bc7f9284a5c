"""Freeze accepted labels into immutable, digested dataset versions, and export them.

Only labels from batches that passed their quality gate (or were resolved by a reviewer),
plus labels that arrived with the data, reach a version. Each row keeps its lineage: source,
ingest batch, licence, labeling batch, annotators, guideline version, pre-label model.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.errors import (
    ConflictError,
    NotFoundError,
    QualityGateError,
    ValidationError,
)
from labelloop.core.names import check_name, check_text, shorten
from labelloop.store.models import (
    Batch,
    DatasetRow,
    DatasetVersion,
    FinalLabel,
    Item,
    ModelVersion,
    Project,
    Task,
)

GATED_OK = ("passed", "resolved")
EXPORT_FORMATS = ("jsonl", "parquet", "csv", "hf")
STREAM_FORMATS = ("jsonl", "parquet", "csv")  # one file each: what the API streams
EXPORT_CHUNK = 10_000  # rows read, and written (one Parquet row group), at a time


def version_digest(rows: list[tuple[str, str]]) -> str:
    """sha256 over sorted ``content_hash<TAB>label`` lines: same labels, same digest."""
    h = hashlib.sha256()
    for content, label in sorted(rows):
        h.update(f"{content}\t{label}\n".encode())
    return h.hexdigest()


def _train_rows(session: Session, project: Project) -> list[tuple[Item, str, dict[str, Any]]]:
    models = {m.id: m.name for m in session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project.id))}
    q = (select(Item, FinalLabel, Batch)
         .join(FinalLabel, FinalLabel.item_id == Item.id)
         .outerjoin(Batch, Batch.id == FinalLabel.batch_id)
         .where(Item.project_id == project.id, Item.split == "pool"))
    reasons = {(b, i): r for b, i, r in session.execute(
        select(Task.batch_id, Task.item_id, Task.reason).join(Batch, Batch.id == Task.batch_id)
        .where(Batch.project_id == project.id))}
    out = []
    labeled: set[int] = set()
    for item, final, batch in session.execute(q):
        labeled.add(item.id)
        if batch is not None and batch.status not in GATED_OK:
            continue  # held back by the quality gate
        out.append((item, final.label, {
            "origin": final.origin, "batch_id": final.batch_id,
            "batch_status": batch.status if batch else None,
            # why a person saw it: calibration rows are the unbiased sample auto-accept uses
            "reason": reasons.get((final.batch_id, item.id)),
            "annotators": final.annotators, "agreement": final.agreement,
            "posterior": final.posterior, "guideline_version": final.guideline_version,
            "prelabel_model": models.get(final.model_version_id or -1),
            "prelabel_model_id": final.model_version_id, "label_event_id": final.event_id}))
    for item in session.scalars(select(Item).where(
            Item.project_id == project.id, Item.split == "pool", Item.given_label.is_not(None))):
        if item.id not in labeled:
            out.append((item, item.given_label, {"origin": "given"}))
    return out


def _eval_rows(session: Session, project: Project) -> list[tuple[Item, str, dict[str, Any]]]:
    items = session.scalars(select(Item).where(
        Item.project_id == project.id, Item.split == "eval", Item.given_label.is_not(None)))
    return [(it, it.given_label, {"origin": "given"}) for it in items]


def freeze_version(session: Session, project: Project, *, split: str = "train",
                   name: str | None = None,
                   include_batches: list[int] | None = None) -> DatasetVersion:
    """Snapshot the project's accepted labels. If nothing changed since the newest version of
    this split (same digest), that version is returned instead of a copy.

    ``include_batches`` restricts a train version to those labeling batches; naming a batch
    that has not passed its gate raises ``QualityGateError`` with the gate's reason.
    """
    if split not in ("train", "eval"):
        raise ValidationError(f"split must be train or eval, got {shorten(split)!r}",
                              where="split")
    if name is not None:
        name = check_name(name, "name")
        if session.scalar(select(DatasetVersion.id).where(
                DatasetVersion.project_id == project.id, DatasetVersion.name == name)):
            raise ConflictError(f"version {name!r} already exists", where="name")
    if include_batches is not None:
        _check_batches(session, project, include_batches)
    rows = _train_rows(session, project) if split == "train" else _eval_rows(session, project)
    if include_batches is not None:
        wanted = set(include_batches)
        rows = [r for r in rows if r[2].get("batch_id") in wanted]
    if not rows:
        raise ValidationError(f"project {project.name!r} has no accepted {split} labels to "
                              "freeze", where="split")
    digest = version_digest([(it.content_hash, label) for it, label, _ in rows])
    latest = session.scalar(select(DatasetVersion).where(
        DatasetVersion.project_id == project.id, DatasetVersion.split == split)
        .order_by(DatasetVersion.id.desc()).limit(1))
    if latest is not None and latest.digest == digest:
        return latest
    n_prior = session.scalar(select(func.count(DatasetVersion.id)).where(
        DatasetVersion.project_id == project.id, DatasetVersion.split == split)) or 0
    counts: dict[str, int] = {}
    for _, label, _ in rows:
        counts[label] = counts.get(label, 0) + 1
    version = DatasetVersion(
        project_id=project.id, name=name or f"{split}-v{n_prior + 1}", split=split,
        digest=digest, n_rows=len(rows), label_counts=counts,
        batch_ids=sorted({lin["batch_id"] for _, _, lin in rows if lin.get("batch_id")}),
        parent_id=latest.id if latest else None)
    session.add(version)
    session.flush()
    session.add_all(DatasetRow(
        version_id=version.id, item_id=it.id, label=label, lineage={
            "source": it.source, "source_row": it.source_row,
            "ingest_batch_id": it.ingest_batch_id, "licence": it.licence,
            "content_hash": it.content_hash, **lin},
        label_event_id=lin.get("label_event_id"), batch_id=lin.get("batch_id"),
        origin=lin.get("origin"), guideline_version=lin.get("guideline_version"),
        prelabel_model_id=lin.get("prelabel_model_id"))
        for it, label, lin in rows)
    session.flush()
    return version


def _check_batches(session: Session, project: Project, batch_ids: list[int]) -> None:
    for batch_id in batch_ids:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.project_id != project.id:
            raise NotFoundError(f"no batch {batch_id} in project {project.name!r}",
                                where="include_batches")
        if batch.status not in GATED_OK:
            raise QualityGateError(f"batch {batch_id} is {batch.status} and cannot feed a "
                                   f"version: {batch.gate_reason or 'QA not finished'}",
                                   where=f"batch {batch_id}")


def get_version(session: Session, project: Project, ref: int | str) -> DatasetVersion:
    q = select(DatasetVersion).where(DatasetVersion.project_id == project.id)
    if isinstance(ref, str) and ref.isascii() and ref.isdigit() and len(ref) <= 18:
        ref = int(ref)
    if isinstance(ref, int):
        version = session.scalar(q.where(DatasetVersion.id == ref)) if 0 < ref < 2**63 else None
    else:
        version = session.scalar(q.where(DatasetVersion.name == check_text(ref, "version")))
    if version is None:
        raise NotFoundError(f"no dataset version {shorten(ref)!r} in project "
                            f"{shorten(project.name)!r}", where="version")
    return version


def version_records(session: Session, version: DatasetVersion) -> list[dict[str, Any]]:
    """Rows as plain records: id, text, label, lineage (in item order)."""
    return [r for chunk in iter_record_chunks(session, version) for r in chunk]


def iter_record_chunks(session: Session, version: DatasetVersion, chunk: int | None = None,
                       ) -> Iterator[list[dict[str, Any]]]:
    """The version's records in item order, ``chunk`` (default ``EXPORT_CHUNK``) at a time:
    pages by item id, so memory stays flat however large the version."""
    chunk = chunk or EXPORT_CHUNK
    last = 0
    while True:
        q = (select(DatasetRow.label, DatasetRow.lineage, Item.id, Item.text)
             .join(Item, Item.id == DatasetRow.item_id)
             .where(DatasetRow.version_id == version.id, DatasetRow.item_id > last)
             .order_by(DatasetRow.item_id).limit(chunk))  # ix_dataset_rows_version_item
        rows = [{"item_id": item_id, "text": text, "label": label, "lineage": lineage}
                for label, lineage, item_id, text in session.execute(q)]
        if not rows:
            return
        yield rows
        last = rows[-1]["item_id"]


def write_version(session: Session, version: DatasetVersion, fmt: str, fh: BinaryIO,
                  progress: Callable[[int], None] | None = None) -> None:
    """Write the version as JSONL, CSV or Parquet into an open binary file, streamed: rows
    are read and written ``EXPORT_CHUNK`` at a time (a Parquet row group each);
    ``progress(rows so far)`` after each."""
    if fmt not in STREAM_FORMATS:
        raise ValidationError(f"format must be one of {STREAM_FORMATS}, got {shorten(fmt)!r}",
                              where="format")
    chunks = _counted(iter_record_chunks(session, version), progress)
    if fmt == "jsonl":
        for records in chunks:
            fh.write("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                             for r in records).encode())
        return
    if fmt == "csv":
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=["item_id", "text", "label", "lineage"])
        writer.writeheader()
        for records in chunks:
            writer.writerows(_flat(records))
        text.detach()  # leave ``fh`` open for the caller
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("item_id", pa.int64()), ("text", pa.string()),
                        ("label", pa.string()), ("lineage", pa.string())],
                       metadata={"labelloop": json.dumps(_meta(version))})
    with pq.ParquetWriter(fh, schema) as writer:
        for records in chunks:
            writer.write_table(pa.Table.from_pylist(_flat(records), schema=schema))


def _counted(chunks: Iterator[list[dict[str, Any]]], progress: Callable[[int], None] | None,
             ) -> Iterator[list[dict[str, Any]]]:
    done = 0
    for records in chunks:
        yield records
        done += len(records)
        if progress is not None:
            progress(done)


def _flat(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"item_id": r["item_id"], "text": r["text"], "label": r["label"],
             "lineage": json.dumps(r["lineage"], sort_keys=True)} for r in records]


def _meta(version: DatasetVersion) -> dict[str, Any]:
    return {"version": version.name, "digest": version.digest, "n_rows": version.n_rows}


def export_version(session: Session, version: DatasetVersion, fmt: str, out: Path) -> Path:
    """Write the version as JSONL, CSV, Parquet or a Hugging Face ``datasets`` folder, with
    flat memory: the folder is built from a streamed Parquet file, memory-mapped."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"format must be one of {EXPORT_FORMATS}, got {shorten(fmt)!r}",
                              where="format")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in STREAM_FORMATS:
        with out.open("wb") as fh:
            write_version(session, version, fmt, fh)
        return out
    from datasets import Dataset

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as work:
        parquet = Path(work) / "rows.parquet"
        with parquet.open("wb") as fh:
            write_version(session, version, "parquet", fh)
        ds = Dataset.from_parquet(str(parquet), cache_dir=str(Path(work) / "cache"))
        ds.info.description = json.dumps(_meta(version))
        ds.save_to_disk(str(out))
    return out
