"""Builds the serving API: ``create_app`` for tests and uvicorn, ``serve`` for the CLI.

Run it with ``bizos serve`` or ``uvicorn serving.main:create_app --factory``. There is
no module-level app, so importing this module reads no settings and opens nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from core.settings import Settings, Target, get_settings
from serving.keys import api_key_store
from serving.routes import api_router
from serving.store import NothingPublished, StoreUnavailable, serving_store

log = logging.getLogger(__name__)

DESCRIPTION = """
Scores and reasons of a tenant's leads, as last published by the pipelines.

**Authentication**: every `/v1` call needs the tenant's API key, as `X-API-Key: bz_...`
or `Authorization: Bearer bz_...`. The key decides the tenant; no URL names one.

**Freshness**: data changes only when a publish swaps in a tenant's new scores, all
at once; `/ready` tells when that last happened.
"""

TAGS = [
    {"name": "lead scores", "description": "Scored leads of the caller's tenant."},
    {"name": "health", "description": "Liveness and readiness probes; no key needed."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app over the serving store that ``settings.target`` selects."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = None
        if settings.target is Target.POSTGRES:
            from serving.postgres_store import open_pool

            pool = open_pool(settings)
        app.state.settings = settings
        app.state.store = serving_store(settings, pool=pool)
        app.state.api_keys = api_key_store(settings, pool=pool)
        log.info("serving API started on the %s store", settings.target.value)
        try:
            yield
        finally:
            if pool is not None:
                pool.close()

    app = FastAPI(
        title="BizOS serving API",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.include_router(api_router)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    return app


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503, not 500: the API is fine, the data behind it is not there (yet)."""
    if isinstance(exc, NothingPublished):
        detail = "nothing has been published yet"
    else:
        detail = "serving store unavailable"
        log.warning("serving store unavailable on %s: %s", request.url.path, exc)
    return JSONResponse({"detail": detail}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def serve(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API under uvicorn until interrupted (``bizos serve``)."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
