"""Lead scores of the caller's tenant: a paged list and single-lead lookup with history."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BeforeValidator

from core.contracts.lead_score_history import LEAD_SCORE_HISTORY
from core.contracts.lead_scores import LEAD_SCORES
from serving.deps import ReaderDep, ScoresReader
from serving.encoders import encode_lead_score as encode_lead_score_body
from serving.encoders import encode_lead_score_history
from serving.readers import ApiReader, Encoder, Versioned, preencode
from serving.routes.responses import (
    DATA_ERRORS,
    json_body,
    not_modified,
    page_body,
    wanted_versions,
)
from serving.schemas import (
    Grade,
    LeadScoreDetailPublic,
    LeadScorePagePublic,
    ProblemPublic,
)
from serving.store import MAX_CURSOR_LENGTH, MAX_ID_LENGTH, NothingPublished, ScoreCursor

# ISO 8601 date-times only: no epoch numbers (which pydantic's datetime would take).
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?"
)


def iso_time_only(value: object) -> object:
    """Let only ISO 8601 text through to pydantic's datetime (a 422 otherwise)."""
    if isinstance(value, str) and not _ISO_TIME.fullmatch(value):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-11-28T09:00:00Z")
    return value


def as_utc(moment: datetime, name: str) -> datetime:
    """A query time made aware: a time without an offset is UTC (the data's zone).

    400 for a time that leaves the calendar once moved to UTC (9999-12-31T23:00-05:00).
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name} is out of range once in UTC"
        ) from None


router = APIRouter(prefix="/v1/leads", tags=["lead scores"], responses=DATA_ERRORS)

MAX_PAGE = 500
# The models' JSON without a model per row (serving/encoders.py); both tables' rows
# are encoded when a tenant's snapshot is built, since every lead read needs them.
encode_lead_score: Encoder = encode_lead_score_body
encode_history: Encoder = encode_lead_score_history
preencode(LEAD_SCORES, encode_lead_score)
preencode(LEAD_SCORE_HISTORY, encode_history)
# Scorings shown with one lead (newest first); a run a day is seven weeks.
MAX_HISTORY = 50
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
    mql: Annotated[
        bool | None, Query(description="Only marketing-qualified leads (true) or the others")
    ] = None,
    updated_since: Annotated[
        datetime | None,
        BeforeValidator(iso_time_only),
        Query(
            description="Only leads scored at or after this time (ISO 8601, e.g."
            " `2026-11-28T09:00:00Z`; UTC if no offset)",
        ),
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
    """The tenant's leads ordered by score (highest first; unknown scores last), then lead_id.

    Filters combine (and): `grade`, `mql`, `min_score` (leaves out unknown scores),
    `updated_since` (by `scored_at`). A cursor is a position in that order, so paging
    stays exact with any filters; keep the same filters while following it.

    Keyset-paged: follow `next_cursor` until it is null to read every lead exactly
    once, even while scores are being republished. The ETag changes with each
    publish of the tenant's scores; send it back as `If-None-Match` to get a 304.
    """
    try:
        after = ScoreCursor.decode(cursor) if cursor else None
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from None
    # One row more than asked tells whether another page exists without a count.
    equals: dict[str, object] = {}
    if grade is not None:
        equals["grade"] = grade.value
    if mql is not None:
        equals["is_mql"] = mql
    at_least: dict[str, object] = {}
    if min_score is not None:
        at_least["score"] = min_score
    if updated_since is not None:
        at_least["scored_at"] = as_utc(updated_since, "updated_since")
    result = await reader.list_rows(
        LEAD_SCORES,
        encode_lead_score,
        tenant_id=key.tenant_id,
        equals=equals or None,
        at_least=at_least or None,
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
        score, lead_id = LEAD_SCORES.order_values(last)
        assert isinstance(score, int) and isinstance(lead_id, str)
        next_cursor = ScoreCursor(score=score, lead_id=lead_id).encode()
    return json_body(LEAD_SCORES, result.version, page_body(items, next_cursor))


@router.get(
    "/{lead_id}/score",
    summary="One lead's score and its history",
    response_model=LeadScoreDetailPublic,
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
    """The score of one of the caller's leads, with its scorings newest first.

    Another tenant's lead answers 404 exactly like a missing one, so ids cannot be
    probed across tenants. The ETag covers both the score and the history publish.
    """
    detail = await read_lead_detail(
        reader, key.tenant_id, lead_id, wanted_versions(request, LEAD_SCORES)
    )
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "lead not found")
    version, body = detail
    if body is None:
        return not_modified(LEAD_SCORES, version)
    return json_body(LEAD_SCORES, version, body)


async def read_lead_detail(
    reader: ApiReader, tenant_id: str, lead_id: str, held: frozenset[str]
) -> tuple[str, bytes | None] | None:
    """One lead's score with its history as the route answers it: ``(version, body)``,
    the body None when the client holds ``version`` (``If-None-Match``), or None when
    the tenant has no such lead. Shared by the route and the ASGI fast path
    (serving/fastpath.py), so both give the same bytes."""
    try:
        history = await reader.list_rows(
            LEAD_SCORE_HISTORY,
            encode_history,
            tenant_id=tenant_id,
            equals={"lead_id": lead_id},
            at_least=None,
            after=None,
            limit=MAX_HISTORY,
            unless_version=frozenset(),
        )
    except NothingPublished:  # a store upgraded but not yet republished: no history yet
        history = Versioned("0", [])
    # The ETag is "<scores version>+<history version>": a 304 only if neither moved.
    suffix = f"+{history.version}"
    result = await reader.get_row(
        LEAD_SCORES,
        encode_lead_score,
        tenant_id=tenant_id,
        key={"lead_id": lead_id},
        unless_version={v.removesuffix(suffix) for v in held if v.endswith(suffix)},
    )
    version = result.version + suffix
    if result.rows is None:
        return version, None
    if not result.rows:
        return None
    body = result.rows[0].body
    history_json = b",".join(r.body for r in history.rows or [])
    return version, body[:-1] + b',"history":[' + history_json + b"]}"
