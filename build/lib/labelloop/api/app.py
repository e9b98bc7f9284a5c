"""``create_app``: the FastAPI service (OpenAPI at /docs)."""

from __future__ import annotations

from fastapi import FastAPI

import labelloop
from labelloop.api.errors import install_error_handlers
from labelloop.api.routers import batches, ingest, projects, quality, tasks, versions
from labelloop.api.schemas import ErrorBody
from labelloop.core.settings import Settings, get_settings
from labelloop.store.db import get_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    get_engine(settings.db_url)  # migrate before the first request
    app = FastAPI(title="labelloop", version=labelloop.__version__,
                  description="Active-learning labeling: ingest, pre-label, select and route, "
                              "annotate, QA, version, train.",
                  responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody},
                             409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    app.state.settings = settings
    install_error_handlers(app)
    for module in (projects, ingest, batches, tasks, quality, versions):
        app.include_router(module.router)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
