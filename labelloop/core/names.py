"""Names people give things (projects, versions, users, tokens): checked once, here.

A name is never used to build a path, but it still travels into file names of downloads,
logs and error messages, so it is kept short and plain: no path separators, no ``..``,
no control characters, no lone surrogates. An error quotes at most ``ECHO`` characters.
"""

from __future__ import annotations

import re
import unicodedata

from labelloop.core.errors import ValidationError

MAX_NAME = 200
ECHO = 60


def shorten(value: object, limit: int = ECHO) -> str:
    """``value`` as text of at most ``limit`` characters, for an error message."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_text(value: str, where: str) -> str:
    """Refuse text that cannot be stored as UTF-8 (lone surrogates) or holds NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{where} is not valid Unicode text (a lone surrogate at "
                              f"character {exc.start})", where=where) from None
    if "\x00" in value:
        raise ValidationError(f"{where} contains a NUL character", where=where)
    return value


def check_name(value: str, where: str, max_len: int = MAX_NAME) -> str:
    """A name, stripped: 1..max_len characters, none of / \\ .. or control characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be text", where=where)
    name = check_text(value, where).strip()
    if not name:
        raise ValidationError(f"{where} is empty", where=where)
    if len(name) > max_len:
        raise ValidationError(f"{where} is longer than {max_len} characters "
                              f"({len(name)})", where=where)
    if "/" in name or "\\" in name or ".." in name or name in {".", "~"}:
        raise ValidationError(f"{where} {shorten(name)!r} may not contain '/', '\\' or '..'",
                              where=where)
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in name):
        raise ValidationError(f"{where} {shorten(name)!r} contains a control character",
                              where=where)
    return name


def file_slug(text: str, limit: int = 120) -> str:
    """``text`` as a safe file name: runs of anything but letters, digits, ``._-`` become
    ``_`` (download names such as ``bank-train-v1``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:limit]
