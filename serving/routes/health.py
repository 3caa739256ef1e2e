"""Liveness, readiness and metrics, for load balancers, orchestrators and Prometheus.

All three are ``async`` and take no key: they run on the event loop, never in the
thread pool, so a pool full of slow requests does not make a healthy process look dead.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse

from serving.deps import ReaderDep
from serving.schemas import HealthPublic, ReadinessPublic
from serving.store import NothingPublished, StoreUnavailable

router = APIRouter(tags=["health"])

# /ready answers within this, whatever the store does.
READY_TIMEOUT_S = 1.5


@router.get("/health", summary="Liveness: the process is up")
async def health() -> HealthPublic:
    """Always 200 while the process serves requests; checks no dependency (no database,
    no thread), so a database outage does not get healthy API processes restarted."""
    return HealthPublic()


@router.get(
    "/ready",
    summary="Readiness: the data path answers and holds published data",
    response_model=ReadinessPublic,
    responses={
        503: {"model": ReadinessPublic, "description": "Store unreachable, unreadable or empty"}
    },
)
async def ready(reader: ReaderDep) -> ReadinessPublic | JSONResponse:
    """200 with the time of the latest publish when the data path works as requests use it
    (on Postgres: the API role's SELECT on every serving table and the key lookup).

    503 within 2 s when the store cannot be reached or read, or when nothing has been
    published yet: an API with no scores to serve should not receive traffic.
    """
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            last = await reader.ready()
    except (StoreUnavailable, TimeoutError) as exc:
        if isinstance(exc, NothingPublished):
            detail = "nothing has been published yet: run the publish step first"
        elif isinstance(exc, TimeoutError):
            detail = f"the store did not answer within {READY_TIMEOUT_S} s"
        else:
            detail = str(exc)
        body = ReadinessPublic(status="not_ready", store=reader.kind.value, detail=detail)
        return JSONResponse(
            body.model_dump(mode="json"),
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )
    return ReadinessPublic(status="ready", store=reader.kind.value, last_published_at=last)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> PlainTextResponse:
    """Requests by route and status, latency histograms, and the rows held in memory
    (snapshots, their rows, loads running), in Prometheus text format."""
    metrics = request.app.state.metrics
    metrics.extra.update(request.app.state.reader.memory_stats())
    return PlainTextResponse(
        metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
