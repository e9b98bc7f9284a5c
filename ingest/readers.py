"""Read rows from JSONL, CSV, Parquet or a Hugging Face ``datasets`` folder.

Each reader yields ``(row_number, row_or_error)``: a dict for a row it could parse, or a
string saying why it could not (undecodable bytes, broken JSON). Row numbers are 1-based
data rows, as a person counts them in the file (the CSV header is not a row).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelloop.core.errors import ValidationError

Row = dict[str, Any] | str

FORMATS = ("jsonl", "csv", "parquet", "hf")


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        raise ValidationError(f"{path} is a folder but not a Hugging Face datasets folder "
                              "(no dataset_info.json)", where=str(path))
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValidationError(f"unknown file type {suffix!r}; expected one of .jsonl .csv .parquet "
                          "or a datasets folder", where=str(path))


def read_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[int, Row]]:
    if not path.exists():
        raise ValidationError(f"no such file or folder: {path}", where=str(path))
    fmt = fmt or detect_format(path)
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf}
    if fmt not in readers:
        raise ValidationError(f"unknown format {fmt!r}; expected one of {FORMATS}", where="format")
    return readers[fmt](path)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, f"undecodable bytes (not UTF-8) at byte {exc.start}"
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON: {exc.msg} at column {exc.colno}"
                continue
            except RecursionError:
                yield number, "JSON nested too deeply"
                continue
            yield number, obj if isinstance(obj, dict) else "a JSON line must be an object"


def _read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    raw = path.read_bytes()
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # Decode line by line so one bad row does not sink the file.
    lines = raw.splitlines(keepends=True)
    decoded: list[str] = []
    bad: dict[int, str] = {}
    for i, line in enumerate(lines):
        try:
            decoded.append(line.decode("utf-8-sig" if i == 0 else "utf-8"))
        except UnicodeDecodeError as exc:
            bad[i] = f"undecodable bytes (not UTF-8) at byte {exc.start}"
            decoded.append("\n")
    # A field may be as large as the file (the row checks bound it and say which row).
    csv.field_size_limit(max(csv.field_size_limit(), len(raw) + 1))
    reader = csv.reader(io.StringIO("".join(decoded)), delimiter=delimiter)
    header: list[str] | None = None
    number = 0
    for fields in reader:
        line_index = reader.line_num - 1
        if header is None:
            header = [h.strip() for h in fields]
            continue
        number += 1
        if line_index in bad:
            yield number, bad[line_index]
            continue
        if not fields:
            number -= 1
            continue
        if len(fields) != len(header):
            yield number, f"has {len(fields)} fields, the header has {len(header)}"
            continue
        yield number, dict(zip(header, fields, strict=True))


def _read_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise ValidationError(f"cannot read Parquet file: {exc}", where=str(path)) from exc
    yield from enumerate(table.to_pylist(), start=1)


def _read_hf(path: Path) -> Iterator[tuple[int, Row]]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    for number, row in enumerate(ds, start=1):
        yield number, dict(row)
