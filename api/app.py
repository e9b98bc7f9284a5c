"""``create_app``: the FastAPI service (OpenAPI at /openapi.json, Swagger UI at /docs).

Every route but ``/health``, ``/auth/login`` and the docs needs a caller (bearer token or
the login cookie); ``labelloop.access.policy`` says what each role may do. Swagger UI's
files are served from the installed ``swagger-ui-bundle`` package, so /docs works offline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

import labelloop
from labelloop.api.errors import install_error_handlers
from labelloop.api.routers import (
    auth,
    batches,
    browse,
    ingest,
    jobs,
    kpis,
    lineage,
    projects,
    quality,
    remediation,
    review,
    tasks,
    versions,
)
from labelloop.api.schemas import ErrorBody
from labelloop.core.settings import Settings, get_settings
from labelloop.jobs.queue import start_worker, stop_worker
from labelloop.selection.service import warm_caches
from labelloop.store.db import get_engine
from labelloop.training.tracking import ensure_store
from labelloop.web import pages

log = logging.getLogger(__name__)
DOCS_ASSETS = "/docs-assets"
# browse before tasks: its /projects/{p}/tasks/all must not be read as a task id
ROUTERS = (auth.router, projects.router, ingest.router, batches.router, browse.router,
           tasks.router, quality.router, versions.router, jobs.router, lineage.router,
           remediation.router, kpis.router, review.router)


def _warm(app: FastAPI, settings: Settings) -> None:
    started = time.perf_counter()
    app.state.caches = "warming"
    try:
        ensure_store(settings.tracking_uri)
        n = warm_caches(settings)
    except Exception:  # a cold cache is slower, never wrong: the server runs on
        log.exception("warming the next-batch caches failed")
        app.state.caches = "cold"
        return
    app.state.caches = "warm"
    log.info("read the predictions of %d models in %.1f s", n, time.perf_counter() - started)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    get_engine(settings.db_url)  # migrate before the first request

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """A job worker thread runs beside the server (``settings.job_worker``), and a
        thread warms the next-batch caches (``settings.warm_caches``)."""
        if settings.job_worker:
            start_worker(settings)
        if settings.warm_caches:
            threading.Thread(target=_warm, args=(_app, settings), name="labelloop-warm",
                             daemon=True).start()
        try:
            yield
        finally:
            if settings.job_worker:
                await anyio.to_thread.run_sync(stop_worker, settings)

    app = FastAPI(lifespan=lifespan, title="labelloop", version=labelloop.__version__,
                  description="Active-learning labeling: ingest, pre-label, select and route, "
                              "annotate, QA, version, train. Authenticate with "
                              "`Authorization: Bearer <token>`.",
                  docs_url=None, redoc_url=None,
                  responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                             403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                             409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    app.state.settings = settings
    app.state.caches = "warming" if settings.warm_caches else "cold"
    app.add_middleware(SessionMiddleware, secret_key=settings.session_secret(),
                       session_cookie="labelloop_session", same_site="strict",
                       https_only=settings.cookie_secure)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="docs-assets")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json",
                                   title="labelloop API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """``caches``: "warming" while the start-up read of the pool predictions runs, then
        "warm" ("cold" when turned off or failed: requests read what they need)."""
        return {"status": "ok", "caches": app.state.caches}

    return app
