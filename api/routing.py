"""Routes whose unit of work commits in the handler's own worker thread.

FastAPI runs a sync handler, and then validates its response, in worker threads drawn
from one pool of 40. Were the commit left to the session dependency, a request would hold
SQLite's write lock from its handler until after its response was validated, waiting for
a free worker while the workers wait for that lock: a deadlock that load tests hit with
50 annotators. So the route commits the request's session as the handler returns, in the
same thread; the dependency only rolls back on error and closes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session


def _sessions(values: dict[str, Any]) -> list[Session]:
    found = []
    for value in values.values():
        session = value if isinstance(value, Session) else getattr(value, "session", None)
        if isinstance(session, Session) and session not in found:
            found.append(session)
    return found


def committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` that commits the sessions it was given before it returns."""

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for session in _sessions(kwargs):
            if session.in_transaction():
                session.commit()
        return result

    return run


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = committing(endpoint)
        super().__init__(path, endpoint, **kwargs)
