"""Ingest a file into a project: checked rows in, bad rows reported, nothing twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.errors import ValidationError
from labelloop.core.names import shorten
from labelloop.ingest.checks import CleanRow, Rejection, check_row
from labelloop.ingest.readers import read_rows
from labelloop.store.models import IngestBatch, Item, Project

SPLITS = ("pool", "eval", "gold")


@dataclass
class IngestReport:
    ingest_batch_id: int | None
    source: str
    n_rows: int = 0
    n_accepted: int = 0
    n_duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def n_rejected(self) -> int:
        return len(self.rejections)

    def to_dict(self) -> dict[str, Any]:
        return {"ingest_batch_id": self.ingest_batch_id, "source": self.source,
                "n_rows": self.n_rows, "n_accepted": self.n_accepted,
                "n_duplicates": self.n_duplicates, "n_rejected": self.n_rejected,
                "rejections": [r.to_dict() for r in self.rejections]}


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(p.read_bytes())
    return h.hexdigest()


def ingest_file(session: Session, project: Project, path: str | Path, *,
                text_field: str = "text", label_field: str | None = "label",
                id_field: str | None = "id", split: str = "pool", licence: str | None = None,
                source_name: str | None = None, max_chars: int = 20_000,
                fmt: str | None = None) -> IngestReport:
    """Read ``path``, check each row, store the good ones once.

    Rows whose content (normalised text) is already in the project count as duplicates and
    are not stored again, so ingesting the same file twice adds nothing. The caller's
    session commits; an error that is not about one row (unreadable file) raises before
    anything is written.
    """
    if split not in SPLITS:
        raise ValidationError(f"split must be one of {SPLITS}, got {shorten(split)!r}",
                              where="split")
    path = Path(path)
    source = source_name or str(path)
    try:
        rows = list(read_rows(path, fmt))  # parse fully first: a broken file writes nothing
    except ValidationError as exc:  # name the file as the caller knows it, not a temp path
        raise ValidationError(exc.message.replace(str(path), source),
                              where=(exc.where or "").replace(str(path), source)) from None
    labels = set(project.labels)
    report = IngestReport(None, source, n_rows=len(rows))
    clean: list[CleanRow] = []
    for number, row in rows:
        if isinstance(row, str):
            report.rejections.append(Rejection(number, None, row))
            continue
        checked = check_row(number, row, text_field=text_field, label_field=label_field,
                            id_field=id_field, labels=labels, max_chars=max_chars)
        (report.rejections if isinstance(checked, Rejection) else clean).append(checked)
    if not rows:
        raise ValidationError(f"{shorten(source)}: the file has no rows", where="file")
    if not clean:
        # Nothing usable: refuse the file whole (no ingest batch is recorded).
        first = report.rejections[0]
        fields = {r.field for r in report.rejections}
        where = text_field if fields == {text_field} else f"row {first.row}"
        raise ValidationError(f"no row of {shorten(source)} can be used ({report.n_rejected} "
                              f"rejected; row {first.row}: {first.reason})", where=where)

    batch = IngestBatch(project_id=project.id, source=source, source_digest=file_digest(path),
                        licence=licence, split=split)
    session.add(batch)
    session.flush()
    existing = _existing_hashes(session, project.id, {c.content_hash for c in clean})
    for row in clean:
        if row.content_hash in existing:
            report.n_duplicates += 1
            continue
        existing.add(row.content_hash)
        session.add(Item(project_id=project.id, text=row.text, content_hash=row.content_hash,
                         external_id=row.external_id, split=split, source=source,
                         source_row=row.row, ingest_batch_id=batch.id, licence=licence,
                         given_label=row.label, meta=row.meta))
        report.n_accepted += 1
    batch.n_rows, batch.n_accepted = report.n_rows, report.n_accepted
    batch.n_duplicates, batch.n_rejected = report.n_duplicates, report.n_rejected
    batch.rejections = [r.to_dict() for r in report.rejections]
    session.flush()
    report.ingest_batch_id = batch.id
    return report


def _existing_hashes(session: Session, project_id: int, hashes: set[str]) -> set[str]:
    found: set[str] = set()
    items = list(hashes)
    for start in range(0, len(items), 500):  # stay under SQL parameter limits
        chunk = items[start:start + 500]
        found.update(session.scalars(select(Item.content_hash).where(
            Item.project_id == project_id, Item.content_hash.in_(chunk))))
    return found
