"""Ingest a file into a project: checked rows in, bad rows reported, nothing twice.

Two ways in, one way to store: :func:`ingest_file` reads an upload whole and stores it in
the caller's unit of work (a broken file writes nothing); the ingest job
(``jobs.runners``) scans a large file once (:func:`scan_rows`: a broken file fails before
anything is written, and the scan counts its rows for the progress bar), then stores it
in committed chunks of :func:`ingest_rows`, so a killed job resumes after its last chunk.
Rows go in as bulk inserts, checked for duplicates a chunk at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from labelloop.core.errors import ValidationError
from labelloop.core.names import shorten
from labelloop.ingest.checks import CleanRow, Rejection, check_row
from labelloop.ingest.readers import Row, read_rows
from labelloop.store.models import IngestBatch, Item, Project, utcnow

SPLITS = ("pool", "eval", "gold")
CHUNK_ROWS = 5_000  # rows per bulk insert (and per committed chunk of an ingest job)
MAX_KEPT_REJECTIONS = 10_000  # an ingest batch keeps this many rejections in full


@dataclass
class IngestReport:
    ingest_batch_id: int | None
    source: str
    n_rows: int = 0
    n_accepted: int = 0
    n_duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    n_rejected_more: int = 0  # rejections past MAX_KEPT_REJECTIONS, counted only

    @property
    def n_rejected(self) -> int:
        return len(self.rejections) + self.n_rejected_more

    def reject(self, rejection: Rejection) -> None:
        if len(self.rejections) < MAX_KEPT_REJECTIONS:
            self.rejections.append(rejection)
        else:
            self.n_rejected_more += 1

    def to_dict(self) -> dict[str, Any]:
        return {"ingest_batch_id": self.ingest_batch_id, "source": self.source,
                "n_rows": self.n_rows, "n_accepted": self.n_accepted,
                "n_duplicates": self.n_duplicates, "n_rejected": self.n_rejected,
                "rejections": [r.to_dict() for r in self.rejections]}


@dataclass(frozen=True)
class Fields:
    """Which columns hold what, and the text limit: how every row is checked."""

    text_field: str = "text"
    label_field: str | None = "label"
    id_field: str | None = "id"
    max_chars: int = 20_000

    def check(self, number: int, row: Row, labels: set[str]) -> CleanRow | Rejection:
        if isinstance(row, str):
            return Rejection(number, None, row)
        return check_row(number, row, text_field=self.text_field,
                         label_field=self.label_field, id_field=self.id_field, labels=labels,
                         max_chars=self.max_chars)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        with p.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValidationError(f"split must be one of {SPLITS}, got {shorten(split)!r}",
                              where="split")


def rows_of(path: Path, source: str, fmt: str | None = None) -> Iterator[tuple[int, Row]]:
    """The file's rows; a file-level error names the file as the caller knows it."""
    try:
        yield from read_rows(path, fmt)
    except ValidationError as exc:  # name the file as the caller knows it, not a temp path
        raise ValidationError(exc.message.replace(str(path), source),
                              where=(exc.where or "").replace(str(path), source)) from None


@dataclass
class Scan:
    n_rows: int = 0
    n_clean: int = 0
    first: Rejection | None = None
    fields_rejected: set[str | None] = field(default_factory=set)


def scan_rows(project: Project, rows: Iterable[tuple[int, Row]], fields: Fields, *,
              source: str) -> Scan:
    """Check every row without storing any: the file-level errors, and a file with no
    usable row, raise ValidationError before anything is written."""
    labels = set(project.labels)
    scan = Scan()
    for number, row in rows:
        scan.n_rows += 1
        checked = fields.check(number, row, labels)
        if isinstance(checked, Rejection):
            scan.first = scan.first or checked
            scan.fields_rejected.add(checked.field)
        else:
            scan.n_clean += 1
    refuse_unusable(scan, fields, source)
    return scan


def refuse_unusable(scan: Scan, fields: Fields, source: str) -> None:
    if not scan.n_rows:
        raise ValidationError(f"{shorten(source)}: the file has no rows", where="file")
    if not scan.n_clean:
        # Nothing usable: refuse the file whole (no ingest batch is recorded).
        first = scan.first
        assert first is not None
        where = (fields.text_field if scan.fields_rejected == {fields.text_field}
                 else f"row {first.row}")
        raise ValidationError(f"no row of {shorten(source)} can be used "
                              f"({scan.n_rows} rejected; row {first.row}: {first.reason})",
                              where=where)


def begin_ingest(session: Session, project: Project, path: Path, *, source: str,
                 split: str = "pool", licence: str | None = None) -> IngestBatch:
    check_split(split)
    batch = IngestBatch(project_id=project.id, source=source, source_digest=file_digest(path),
                        licence=licence, split=split, n_rows=0, n_accepted=0, n_duplicates=0,
                        n_rejected=0, rejections=[])
    session.add(batch)
    session.flush()
    return batch


def ingest_rows(session: Session, project: Project, batch: IngestBatch,
                rows: Iterable[tuple[int, Row]], fields: Fields) -> IngestReport:
    """Check and store ``rows`` (bulk inserts of ``CHUNK_ROWS``), content already in the
    project counted as duplicates; the ingest batch's counters grow by what this call saw.
    Returns this call's report."""
    labels = set(project.labels)
    report = IngestReport(batch.id, batch.source)
    it = iter(rows)
    while chunk := list(islice(it, CHUNK_ROWS)):
        clean: list[CleanRow] = []
        for number, row in chunk:
            report.n_rows += 1
            checked = fields.check(number, row, labels)
            if isinstance(checked, Rejection):
                report.reject(checked)
            else:
                clean.append(checked)
        _store(session, project, batch, clean, report)
    kept = batch.rejections or []
    room = max(0, MAX_KEPT_REJECTIONS - len(kept))
    batch.rejections = [*kept, *(r.to_dict() for r in report.rejections[:room])]
    batch.n_rows += report.n_rows
    batch.n_accepted += report.n_accepted
    batch.n_duplicates += report.n_duplicates
    batch.n_rejected += report.n_rejected
    session.flush()
    return report


def _store(session: Session, project: Project, batch: IngestBatch, clean: list[CleanRow],
           report: IngestReport) -> None:
    """One statement per chunk: ``INSERT .. ON CONFLICT (project_id, content_hash) DO
    NOTHING``, so the unique index finds the duplicates already stored (a look-up query per
    chunk planned on a table that grows as it loads would scan it whole)."""
    now, new, seen = utcnow(), [], set()
    for row in clean:
        if row.content_hash in seen:  # the same content twice in this chunk
            report.n_duplicates += 1
            continue
        seen.add(row.content_hash)
        new.append({"project_id": project.id, "text": row.text,
                    "content_hash": row.content_hash, "external_id": row.external_id,
                    "split": batch.split, "source": batch.source, "source_row": row.row,
                    "ingest_batch_id": batch.id, "licence": batch.licence,
                    "given_label": row.label, "meta": row.meta, "created_at": now})
    if not new:
        return
    if session.get_bind().dialect.name == "postgresql":
        stored = _copy_items(session, new)
    else:
        stmt = sqlite_insert(Item.__table__).on_conflict_do_nothing(
            index_elements=["project_id", "content_hash"]).returning(Item.__table__.c.id)
        stored = len(session.execute(stmt, new).all())
    report.n_accepted += stored
    report.n_duplicates += len(new) - stored


_COLUMNS = ("project_id", "text", "content_hash", "external_id", "split", "source",
            "source_row", "ingest_batch_id", "licence", "given_label", "meta", "created_at")


def _copy_items(session: Session, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: COPY the rows into a temporary table, then one ``INSERT .. SELECT ..
    ON CONFLICT DO NOTHING``; the number stored. In the session's transaction. COPY because
    a multi-row INSERT's client-side parsing took 60% of the time (4k rows/s, against
    25k+ this way: benchmarks/scale_million.py)."""
    cols = ", ".join(_COLUMNS)
    cursor = session.connection().connection.driver_connection.cursor()  # psycopg 3
    with cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS items_incoming "
                       "(LIKE items INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY items_incoming ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c == "meta" else row[c]
                                for c in _COLUMNS])
        cursor.execute(f"INSERT INTO items ({cols}) SELECT {cols} FROM items_incoming "
                       "ON CONFLICT (project_id, content_hash) DO NOTHING")
        stored = cursor.rowcount
        cursor.execute("TRUNCATE items_incoming")
    return stored


def ingest_file(session: Session, project: Project, path: str | Path, *,
                text_field: str = "text", label_field: str | None = "label",
                id_field: str | None = "id", split: str = "pool", licence: str | None = None,
                source_name: str | None = None, max_chars: int = 20_000,
                fmt: str | None = None) -> IngestReport:
    """Read ``path``, check each row, store the good ones once.

    Rows whose content (normalised text) is already in the project count as duplicates and
    are not stored again, so ingesting the same file twice adds nothing. The caller's
    session commits; an error that is not about one row (unreadable file) raises before
    anything is written. (Files too large to hold: the ingest job.)
    """
    check_split(split)
    path = Path(path)
    source = source_name or str(path)
    fields = Fields(text_field, label_field, id_field, max_chars)
    rows = list(rows_of(path, source, fmt))  # parse fully first: a broken file writes nothing
    scan_rows(project, rows, fields, source=source)
    batch = begin_ingest(session, project, path, source=source, split=split, licence=licence)
    return ingest_rows(session, project, batch, rows, fields)
