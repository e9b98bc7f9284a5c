"""Uploaded files land in a temporary folder for the ingest readers, then vanish, unless
an ingest job is to read them (``keep_upload``)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from labelloop.core.errors import ValidationError
from labelloop.core.names import shorten

ACCEPTED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq")
CHUNK = 1 << 20


@contextmanager
def saved_upload(file: UploadFile, max_bytes: int) -> Iterator[Path]:
    """The upload as a file with its own suffix (the readers pick a format by suffix),
    refused past ``max_bytes``."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in ACCEPTED:
        raise ValidationError(f"file {shorten(file.filename)!r}: expected .jsonl, .csv or "
                              ".parquet", where="file")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        size = 0
        with path.open("wb") as fh:
            while chunk := file.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ValidationError(f"the file is larger than {max_bytes} bytes",
                                          where="file")
                fh.write(chunk)
        yield path


def keep_upload(path: Path, folder: Path) -> Path:
    """Move a saved upload into ``folder`` (the settings' uploads folder), under a name of
    its own, for a job to read; the job deletes it when done."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{uuid.uuid4().hex}{path.suffix}"
    shutil.move(path, kept)
    return kept
