"""Lead scores of the caller's tenant: a paged list and single-lead lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from core.contracts.lead_scores import LEAD_SCORES
from serving.deps import ReaderDep, ScoresReader
from serving.readers import Encoder
from serving.routes.responses import (
    DATA_ERRORS,
    encoder,
    json_body,
    not_modified,
    page_body,
    wanted_versions,
)
from serving.schemas import Grade, LeadScorePagePublic, LeadScorePublic, ProblemPublic
from serving.store import MAX_CURSOR_LENGTH, MAX_ID_LENGTH, ScoreCursor

router = APIRouter(prefix="/v1/leads", tags=["lead scores"], responses=DATA_ERRORS)

MAX_PAGE = 500
encode_lead_score: Encoder = encoder(LeadScorePublic)
# Printable text: no NUL or other control characters (Postgres refuses NUL in text).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"


@router.get("/scores", summary="List lead scores, best first", response_model=LeadScorePagePublic)
async def list_lead_scores(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    grade: Annotated[Grade | None, Query(description="Only leads with this grade")] = None,
    min_score: Annotated[
        int | None, Query(ge=0, le=100, description="Only leads scoring at least this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`next_cursor` of the previous page",
        ),
    ] = None,
) -> Response:
    """The tenant's leads ordered by score (highest first), then lead_id.

    Keyset-paged: follow `next_cursor` until it is null to read every lead exactly
    once, even while scores are being republished. The ETag changes with each
    publish of the tenant's scores; send it back as `If-None-Match` to get a 304.
    """
    try:
        after = ScoreCursor.decode(cursor) if cursor else None
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from None
    # One row more than asked tells whether another page exists without a count.
    result = await reader.list_rows(
        LEAD_SCORES,
        encode_lead_score,
        tenant_id=key.tenant_id,
        equals={"grade": grade.value} if grade else None,
        at_least={"score": min_score} if min_score is not None else None,
        after=after.values() if after else None,
        limit=limit + 1,
        unless_version=wanted_versions(request, LEAD_SCORES),
    )
    if result.rows is None:
        return not_modified(LEAD_SCORES, result.version)
    items = result.rows[:limit]
    next_cursor = None
    if len(result.rows) > limit:
        last = items[-1].row
        next_cursor = ScoreCursor(score=last["score"], lead_id=last["lead_id"]).encode()
    return json_body(LEAD_SCORES, result.version, page_body(items, next_cursor))


@router.get(
    "/{lead_id}/score",
    summary="One lead's score",
    response_model=LeadScorePublic,
    responses={404: {"model": ProblemPublic, "description": "No such lead for this tenant"}},
)
async def get_lead_score(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    lead_id: Annotated[
        str,
        Path(
            max_length=MAX_ID_LENGTH,
            pattern=ID_PATTERN,
            description="Lead id within the caller's tenant",
        ),
    ],
) -> Response:
    """The score of one of the caller's leads.

    Another tenant's lead answers 404 exactly like a missing one, so ids cannot be
    probed across tenants.
    """
    result = await reader.get_row(
        LEAD_SCORES,
        encode_lead_score,
        tenant_id=key.tenant_id,
        key={"lead_id": lead_id},
        unless_version=wanted_versions(request, LEAD_SCORES),
    )
    if result.rows is None:
        return not_modified(LEAD_SCORES, result.version)
    if not result.rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "lead not found")
    return json_body(LEAD_SCORES, result.version, result.rows[0].body)
