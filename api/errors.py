"""The one place that maps errors to HTTP responses, all in one shape:
``{"detail": {"error", "message", "where"}}``.

labelloop's own errors carry their status; FastAPI's request validation becomes 422 naming
the first bad field; a race lost to a unique constraint is a 409; a database too busy to
answer is a 503 with Retry-After. Nothing echoes more than a short excerpt of the input.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from labelloop.core.errors import AuthenticationError, LabelloopError
from labelloop.core.names import shorten

log = logging.getLogger("labelloop.api")


def error_body(status: int, error: str, message: str, where: str | None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, headers=headers,
                        content={"detail": {"error": error, "message": message,
                                            "where": where}})


def _where(loc: tuple | list) -> str:
    return ".".join(shorten(p, 40) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelloopError)
    async def _labelloop_error(_request: Request, exc: LabelloopError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) \
            else None
        return error_body(exc.status_code, type(exc).__name__, exc.message, exc.where, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return error_body(422, "RequestValidationError",
                          f"{_where(first.get('loc', ()))}: {shorten(first.get('msg'), 200)}"
                          f"{more}", _where(first.get("loc", ())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, "HTTPException", shorten(exc.detail, 200), None,
                          getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", shorten(exc.orig, 300))
        return error_body(409, "ConflictError", "the request raced another one that changed "
                          "the same record first; read it again", None)

    @app.exception_handler(DataError)
    async def _data(_request: Request, exc: DataError) -> JSONResponse:
        return error_body(422, "ValidationError", "a value does not fit its column: "
                          f"{shorten(exc.orig, 160)}", None)

    @app.exception_handler(OperationalError)
    async def _busy(_request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", shorten(exc.orig, 300))
        return error_body(503, "ServiceUnavailable", "the database is busy or unreachable; "
                          "retry shortly", None, {"Retry-After": "1"})
