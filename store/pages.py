"""Keyset pages with an exact count: what every list of a million rows is served with.

Pages run ``after`` the last id seen, ascending, so page 1,000 costs what page 1 costs. The
count runs on the filters alone; the callers filter on columns an index leads with (see
``benchmarks/scale_million.py`` for the figures at 1M items).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from labelloop.core.errors import ValidationError

MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    count: int  # every row the filters match, not only this page's
    rows: list[dict[str, Any]]
    next_after: int | None  # pass as ``after`` for the next page; None on the last page

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "rows": self.rows, "next_after": self.next_after}


def keyset_page(session: Session, query: Select[Any], key: Any, limit: int, after: int | None,
                row: Callable[[Any], dict[str, Any]]) -> Page:
    """One page of ``query`` (selecting one entity) ordered by ``key`` (its id column),
    each found entity turned into a dict by ``row``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must lie in [1, {MAX_PAGE}], got {limit}", where="limit")
    count = session.scalar(select(func.count()).select_from(
        query.with_only_columns(key).order_by(None).subquery())) or 0
    if after is not None:
        query = query.where(key > after)
    found = list(session.scalars(query.order_by(key).limit(limit + 1)))
    more = len(found) > limit
    return Page(count, [row(r) for r in found[:limit]],
                int(found[limit - 1].id) if more else None)
