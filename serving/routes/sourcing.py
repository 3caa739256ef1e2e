"""Sourcing opportunities of the caller's tenant: a ranked, filtered list and one item."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from core.contracts.sourcing_opportunities import SOURCING_OPPORTUNITIES
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
from serving.schemas import ProblemPublic
from serving.sourcing_schemas import SourcingOpportunityPagePublic, SourcingOpportunityPublic
from serving.store import MAX_CURSOR_LENGTH, is_clean_text
from serving.supplier_schemas import Tier

router = APIRouter(prefix="/v1/sourcing", tags=["sourcing"], responses=DATA_ERRORS)

MAX_PAGE = 500
ASIN_PATTERN = r"^[A-Za-z0-9]{10}$"
encode_opportunity: Encoder = encoder(SourcingOpportunityPublic)
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page",
    ),
]


def encode_cursor(position: tuple[object, ...]) -> str:
    """The keyset position (score, supplier component, asin; nulls as they sort)."""
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, int, str]:
    """A position from ``encode_cursor``; 400 for anything a client made up."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        score, supplier_score, asin = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from None
    if (
        type(score) is not int
        or type(supplier_score) is not int
        or not -1 <= score <= 100
        or not -100 <= supplier_score <= 100
        or not isinstance(asin, str)
        or len(asin) > 20
        or not is_clean_text(asin)
    ):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor")
    return (score, supplier_score, asin)


@router.get(
    "/opportunities",
    summary="List sourcing opportunities, best first",
    response_model=SourcingOpportunityPagePublic,
)
async def list_opportunities(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    min_score: Annotated[
        int | None, Query(ge=0, le=100, description="Only opportunities scoring at least this")
    ] = None,
    category: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[a-z0-9_]+$",
            description="Only this sales-rank category, e.g. `home_garden_display_on_website`",
        ),
    ] = None,
    min_margin: Annotated[
        float | None,
        Query(ge=-1000, le=100, description="Only a margin of at least this % of the price"),
    ] = None,
    supplier_tier: Annotated[
        Tier | None, Query(description="Only items whose best supplier has this risk tier")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    cursor: Cursor = None,
) -> Response:
    """The tenant's opportunities by score (unknown last), then by the supplier component
    (the safer supplier first), then ASIN.

    Filters combine (and); `min_score` and `min_margin` leave out unknown values. A
    cursor is a position in that order: keep the same filters while following it.
    Keyset-paged: follow `next_cursor` until it is null. The ETag changes with each
    publish of the tenant's opportunities; send it back as `If-None-Match` for a 304.
    """
    after = decode_cursor(cursor) if cursor else None
    equals: dict[str, object] = {}
    if category is not None:
        equals["category"] = category
    if supplier_tier is not None:
        equals["supplier_tier"] = supplier_tier.value
    at_least: dict[str, object] = {}
    if min_score is not None:
        at_least["score"] = min_score
    if min_margin is not None:
        at_least["margin_pct"] = min_margin
    # One row more than asked tells whether another page exists without a count.
    result = await reader.list_rows(
        SOURCING_OPPORTUNITIES,
        encode_opportunity,
        tenant_id=key.tenant_id,
        equals=equals or None,
        at_least=at_least or None,
        after=after,
        limit=limit + 1,
        unless_version=wanted_versions(request, SOURCING_OPPORTUNITIES),
    )
    if result.rows is None:
        return not_modified(SOURCING_OPPORTUNITIES, result.version)
    items = result.rows[:limit]
    next_cursor = None
    if len(result.rows) > limit:
        next_cursor = encode_cursor(SOURCING_OPPORTUNITIES.order_values(items[-1].row))
    return json_body(SOURCING_OPPORTUNITIES, result.version, page_body(items, next_cursor))


@router.get(
    "/opportunities/{asin}",
    summary="One item's opportunity, estimate, supplier and reasons",
    response_model=SourcingOpportunityPublic,
    responses={404: {"model": ProblemPublic, "description": "No such opportunity"}},
)
async def get_opportunity(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    asin: Annotated[str, Path(pattern=ASIN_PATTERN, description="The item's ASIN")],
) -> Response:
    """Another tenant's item answers 404 exactly like a missing one."""
    result = await reader.get_row(
        SOURCING_OPPORTUNITIES,
        encode_opportunity,
        tenant_id=key.tenant_id,
        key={"asin": asin.upper()},
        unless_version=wanted_versions(request, SOURCING_OPPORTUNITIES),
    )
    if result.rows is None:
        return not_modified(SOURCING_OPPORTUNITIES, result.version)
    if not result.rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "opportunity not found")
    return json_body(SOURCING_OPPORTUNITIES, result.version, result.rows[0].body)
