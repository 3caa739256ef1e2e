"""Lead scores of the caller's tenant: a paged list and single-lead lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from core.contracts.lead_scores import LEAD_SCORES
from serving.deps import CurrentTenant, StoreDep
from serving.schemas import ErrorPublic, Grade, LeadScorePagePublic, LeadScorePublic
from serving.store import ScoreCursor

router = APIRouter(
    prefix="/v1/leads",
    tags=["lead scores"],
    responses={
        401: {"model": ErrorPublic, "description": "Missing or invalid API key"},
        503: {"model": ErrorPublic, "description": "Serving store unavailable or empty"},
    },
)

MAX_PAGE = 500


@router.get("/scores", summary="List lead scores, best first")
def list_lead_scores(
    store: StoreDep,
    tenant_id: CurrentTenant,
    grade: Annotated[Grade | None, Query(description="Only leads with this grade")] = None,
    min_score: Annotated[
        int | None, Query(ge=0, le=100, description="Only leads scoring at least this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> LeadScorePagePublic:
    """The tenant's leads ordered by score (highest first), then lead_id.

    Keyset-paged: follow `next_cursor` until it is null to read every lead exactly
    once, even while scores are being republished.
    """
    try:
        after = ScoreCursor.decode(cursor) if cursor else None
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid cursor") from None
    # One row more than asked tells whether another page exists without a count.
    rows = store.list_rows(
        LEAD_SCORES,
        tenant_id=tenant_id,
        equals={"grade": grade.value} if grade else None,
        at_least={"score": min_score} if min_score is not None else None,
        after=after.values() if after else None,
        limit=limit + 1,
    )
    items = [LeadScorePublic.from_row(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = ScoreCursor(score=last.score, lead_id=last.lead_id).encode()
    return LeadScorePagePublic(items=items, next_cursor=next_cursor)


@router.get(
    "/{lead_id}/score",
    summary="One lead's score",
    responses={404: {"model": ErrorPublic, "description": "No such lead for this tenant"}},
)
def get_lead_score(
    store: StoreDep,
    tenant_id: CurrentTenant,
    lead_id: Annotated[str, Path(description="Lead id within the caller's tenant")],
) -> LeadScorePublic:
    """The score of one of the caller's leads.

    Another tenant's lead answers 404 exactly like a missing one, so ids cannot be
    probed across tenants.
    """
    row = store.get_row(LEAD_SCORES, tenant_id=tenant_id, key={"lead_id": lead_id})
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "lead not found")
    return LeadScorePublic.from_row(row)
