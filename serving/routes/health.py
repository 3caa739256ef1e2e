"""Liveness and readiness, for load balancers and orchestrators (no API key)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from serving.deps import StoreDep
from serving.schemas import HealthPublic, ReadinessPublic
from serving.store import NothingPublished, StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
def health() -> HealthPublic:
    """Always 200 while the process serves requests; checks no dependency, so a
    database outage does not get healthy API processes restarted."""
    return HealthPublic()


@router.get(
    "/ready",
    summary="Readiness: the store answers and holds published data",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "Store unreachable or empty"}},
)
def ready(store: StoreDep) -> ReadinessPublic | JSONResponse:
    """200 with the time of the latest publish when the serving store answers.

    503 when the store cannot be reached, or when nothing has been published yet:
    an API with no scores to serve should not receive traffic.
    """
    try:
        last = store.last_published_at()
    except StoreUnavailable as exc:
        detail = str(exc)
        if isinstance(exc, NothingPublished):
            detail = "nothing has been published yet: run the publish step first"
        body = ReadinessPublic(status="not_ready", store=store.kind.value, detail=detail)
        return JSONResponse(body.model_dump(mode="json"), status.HTTP_503_SERVICE_UNAVAILABLE)
    return ReadinessPublic(status="ready", store=store.kind.value, last_published_at=last)
