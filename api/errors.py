"""The one place that maps labelloop errors to HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from labelloop.core.errors import LabelloopError


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelloopError)
    async def _labelloop_error(_request: Request, exc: LabelloopError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.to_dict()})
