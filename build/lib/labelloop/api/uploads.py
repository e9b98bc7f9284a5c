"""Uploaded files land in a temporary folder for the ingest readers, then vanish."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from labelloop.core.errors import ValidationError

ACCEPTED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq")


@contextmanager
def saved_upload(file: UploadFile) -> Iterator[Path]:
    """The upload as a file with its own suffix (the readers pick a format by suffix)."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in ACCEPTED:
        raise ValidationError(f"file {file.filename!r}: expected .jsonl, .csv or .parquet",
                              where="file")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        yield path
