"""Row checks at the door: each bad row gets its row number, field and reason."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_ID_CHARS = 200
MAX_EXTRA_CHARS = 65_536  # other fields of a row, kept as its metadata


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
    if len(value) > max_chars:
        return Rejection(number, text_field,
                         f"text has {len(value)} characters, the limit is {max_chars}")
    if not _storable(value):
        return Rejection(number, text_field, "text is not valid Unicode (a lone surrogate "
                         "or a NUL character)")
    if not normalise_text(value):
        return Rejection(number, text_field, "text is empty")
    label = None
    if label_field is not None and row.get(label_field) not in (None, ""):
        label = str(row[label_field]).strip()
        if label not in labels:
            return Rejection(number, label_field, f"unknown label {label!r}")
    ext = row.get(id_field) if id_field else None
    if ext is not None and (len(str(ext)) > MAX_ID_CHARS or not _storable(str(ext))):
        return Rejection(number, id_field, f"id must be plain text of at most {MAX_ID_CHARS} "
                         "characters")
    meta = {k: v for k, v in row.items() if k not in {text_field, label_field, id_field}
            and isinstance(v, str | int | float | bool) and not isinstance(v, bytes)}
    size = sum(len(str(k)) + len(str(v)) for k, v in meta.items())
    if size > max(max_chars, MAX_EXTRA_CHARS):
        return Rejection(number, None, f"the other fields hold {size} characters, the limit "
                         f"is {max(max_chars, MAX_EXTRA_CHARS)}")
    if not all(_storable(str(k)) and _storable(str(v)) for k, v in meta.items()):
        return Rejection(number, None, "a field is not valid Unicode (a lone surrogate or a "
                         "NUL character)")
    # Stored exactly as given; only the dedup hash reads the normalised form.
    return CleanRow(number, value, content_hash(value), label,
                    None if ext is None else str(ext), meta)


def _storable(text: str) -> bool:
    """UTF-8 encodable (no lone surrogates) and free of NUL, which PostgreSQL refuses."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
