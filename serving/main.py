"""Builds the serving API: ``create_app`` for tests and uvicorn, ``serve`` for the CLI.

Run it with ``bizos serve`` or ``uvicorn serving.main:create_app --factory``. There is
no module-level app, so importing this module reads no settings and opens nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings, get_settings
from serving import problems
from serving.fastpath import LeadScoreFastPath
from serving.observability import Metrics, RequestContext, log_config
from serving.ratelimit import rate_limiter
from serving.readers import api_reader
from serving.routes import api_router
from serving.routes import ops as ops_routes

log = logging.getLogger(__name__)

DESCRIPTION = """
Scores and reasons of a tenant's leads, as last published by the pipelines.

**Authentication**: every `/v1` call needs the tenant's API key, as `X-API-Key: bz_...`
or `Authorization: Bearer bz_...` (one of them; two different keys are refused). The
key decides the tenant; no URL names one. Keys have scopes (`scores:read`,
`reviews:write`, `admin`) and may expire.

**Errors** are `application/problem+json` (RFC 9457) with a `request_id`, also sent
as the `X-Request-ID` header. 503 and 429 carry `Retry-After`.

**Freshness and caching**: data changes only when a publish swaps in a tenant's new
scores, all at once. Responses carry an `ETag` per publish; send it back as
`If-None-Match` for a 304. `/ready` tells when the latest publish happened.
"""

TAGS = [
    {"name": "lead scores", "description": "Scored leads of the caller's tenant."},
    {"name": "health", "description": "Liveness, readiness and metrics; no key needed."},
    {"name": "ops", "description": "Freshness and data-quality checks of the tenant's sources."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app over the reader that ``settings.target`` selects."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reader = api_reader(settings)
        await reader.open()
        limiter = rate_limiter(settings.redis_url, settings.api_rate_limit)
        app.state.settings = settings
        app.state.reader = reader
        app.state.limiter = limiter
        app.state.metrics = metrics
        log.info("serving API started on the %s store", settings.target.value)
        try:
            yield
        finally:
            await limiter.close()
            await reader.close()

    app = ServingAPI(
        title="BizOS serving API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.include_router(api_router)
    app.include_router(ops_routes.router)
    problems.install(app)
    app.front = RequestContext(LeadScoreFastPath(app.framework), metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = _problem_media_types(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class ServingAPI(FastAPI):
    """FastAPI, with HTTP requests entering through ``front`` first.

    ``front`` is the request context (ids, logs, metrics) around the lead-score fast
    path (serving/fastpath.py), around FastAPI itself (``framework``). Placed here, in
    front of FastAPI's own layers (its error and body-limit middleware, and a
    telemetry check that reads the environment on each request, about a quarter of a
    fast-path request's time), rather than inside them as ordinary middleware: the
    fast path answers only from memory and hands every error case on to FastAPI.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            scope["app"] = self
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's handling of a request, without ``front``."""
        await super().__call__(scope, receive, send)


def _problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Error responses are documented as what they are: problem+json, one schema."""
    problem_ref = {"$ref": "#/components/schemas/ProblemPublic"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                body = content.get("application/json", {}).get("schema", {})
                ref = body.get("$ref", "")
                if (
                    code.isdigit()
                    and int(code) >= 400
                    and ref.endswith(("/ProblemPublic", "/HTTPValidationError"))
                ):
                    response["content"] = {"application/problem+json": {"schema": problem_ref}}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def serve(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """Run the API under uvicorn until interrupted (``bizos serve``), logging JSON lines.

    With ``workers > 1`` uvicorn imports the app factory in each worker process; the
    settings then come from the environment, as they would in production.
    """
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(),
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        uvicorn.run("serving.main:create_app", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
