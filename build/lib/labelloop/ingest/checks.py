"""Row checks at the door: each bad row gets its row number, field and reason."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class CleanRow:
    row: int
    text: str
    content_hash: str
    label: str | None
    external_id: str | None
    meta: dict[str, Any]


def normalise_text(text: str) -> str:
    """NFC and collapsed whitespace: the form that is hashed, so trivial variants dedup."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def check_row(number: int, row: dict[str, Any], *, text_field: str, label_field: str | None,
              id_field: str | None, labels: set[str], max_chars: int) -> CleanRow | Rejection:
    """Validate one parsed row against the project's schema."""
    if text_field not in row:
        return Rejection(number, text_field, f"missing field {text_field!r}")
    value = row[text_field]
    if value is None or (isinstance(value, float) and value != value):
        return Rejection(number, text_field, "text is empty")
    if not isinstance(value, str):
        return Rejection(number, text_field, f"text must be a string, got {type(value).__name__}")
    text = normalise_text(value)
    if not text:
        return Rejection(number, text_field, "text is empty")
    if len(value) > max_chars:
        return Rejection(number, text_field,
                         f"text has {len(value)} characters, the limit is {max_chars}")
    label = None
    if label_field is not None and row.get(label_field) not in (None, ""):
        label = str(row[label_field]).strip()
        if label not in labels:
            return Rejection(number, label_field, f"unknown label {label!r}")
    ext = row.get(id_field) if id_field else None
    meta = {k: v for k, v in row.items() if k not in {text_field, label_field, id_field}
            and isinstance(v, str | int | float | bool) and not isinstance(v, bytes)}
    return CleanRow(number, text, content_hash(text), label,
                    None if ext is None else str(ext), meta)
