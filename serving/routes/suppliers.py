"""Supplier risk of the caller's tenant, its review queue, and reviewers' decisions."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response

from core.contracts.score_shape import parse_reasons_json
from core.contracts.supplier_risk import SUPPLIER_RISK
from serving.deps import ReaderDep, ScoresReader, require_scope
from serving.keys import KeyGrant
from serving.readers import Encoder
from serving.review_writer import audit_refusal, record_review
from serving.routes.responses import (
    DATA_ERRORS,
    encoder,
    json_body,
    not_modified,
    page_body,
    wanted_versions,
)
from serving.schemas import ProblemPublic
from serving.store import MAX_CURSOR_LENGTH, MAX_ID_LENGTH, is_clean_text
from serving.supplier_schemas import (
    ReviewCreate,
    ReviewPublic,
    ReviewStatus,
    SupplierRiskDetailPublic,
    SupplierRiskPagePublic,
    SupplierRiskPublic,
    Tier,
)
from suppliers.reviews import MatchVerdict, ReviewRequestError, check_decision, request_hash

router = APIRouter(prefix="/v1/suppliers", tags=["supplier risk"], responses=DATA_ERRORS)

MAX_PAGE = 500
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
encode_risk: Encoder = encoder(SupplierRiskPublic)
encode_detail: Encoder = encoder(SupplierRiskDetailPublic)
ReviewsWriter = Annotated[KeyGrant, require_scope("reviews:write")]
SupplierId = Annotated[
    str, Path(max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Supplier id")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page",
    ),
]


def encode_cursor(supplier_id: str) -> str:
    raw = json.dumps([supplier_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        (supplier_id,) = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from None
    if not is_clean_text(supplier_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor")
    return (supplier_id,)


async def _page(
    request: Request,
    reader: ReaderDep,
    key: KeyGrant,
    equals: dict[str, object],
    limit: int,
    cursor: str | None,
) -> Response:
    after = decode_cursor(cursor) if cursor else None
    result = await reader.list_rows(
        SUPPLIER_RISK,
        encode_risk,
        tenant_id=key.tenant_id,
        equals=equals or None,
        at_least=None,
        after=after,
        limit=limit + 1,
        unless_version=wanted_versions(request, SUPPLIER_RISK),
    )
    if result.rows is None:
        return not_modified(SUPPLIER_RISK, result.version)
    items = result.rows[:limit]
    next_cursor = encode_cursor(items[-1].row["supplier_id"]) if len(result.rows) > limit else None
    return json_body(SUPPLIER_RISK, result.version, page_body(items, next_cursor))


@router.get("/risk", summary="List supplier risk", response_model=SupplierRiskPagePublic)
async def list_supplier_risk(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    tier: Annotated[Tier | None, Query(description="Only suppliers of this tier")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Cursor = None,
) -> Response:
    """The tenant's suppliers by supplier_id, keyset-paged: follow `next_cursor`."""
    return await _page(request, reader, key, {"grade": tier.value} if tier else {}, limit, cursor)


@router.get("/reviews", summary="The review queue", response_model=SupplierRiskPagePublic)
async def list_reviews(
    request: Request,
    reader: ReaderDep,
    key: ScoresReader,
    review_status: Annotated[
        ReviewStatus, Query(alias="status", description="pending, lapsed, approved, ...")
    ] = ReviewStatus.pending,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Cursor = None,
) -> Response:
    """Suppliers in one review status (pending by default), keyset-paged."""
    return await _page(request, reader, key, {"review_status": review_status.value}, limit, cursor)


@router.get(
    "/{supplier_id}/risk",
    summary="One supplier's risk, documents and reasons",
    response_model=SupplierRiskDetailPublic,
    responses={404: {"model": ProblemPublic, "description": "No such supplier"}},
)
async def get_supplier_risk(
    request: Request, reader: ReaderDep, key: ScoresReader, supplier_id: SupplierId
) -> Response:
    result = await reader.get_row(
        SUPPLIER_RISK,
        encode_detail,
        tenant_id=key.tenant_id,
        key={"supplier_id": supplier_id},
        unless_version=wanted_versions(request, SUPPLIER_RISK),
    )
    if result.rows is None:
        return not_modified(SUPPLIER_RISK, result.version)
    if not result.rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "supplier not found")
    return json_body(SUPPLIER_RISK, result.version, result.rows[0].body)


@router.post(
    "/{supplier_id}/reviews",
    summary="Post a review decision",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewPublic,
    responses={
        200: {"model": ReviewPublic, "description": "Replayed: this Idempotency-Key's decision"},
        404: {"model": ProblemPublic, "description": "No such supplier"},
        409: {"model": ProblemPublic, "description": "Stale risk version, or an open match"},
    },
)
async def post_review(
    request: Request,
    reader: ReaderDep,
    key: ReviewsWriter,
    supplier_id: SupplierId,
    body: ReviewCreate,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=200,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Repeat a request with the same key and it changes nothing",
        ),
    ],
) -> Response:
    """Approve, reject or ask for information about a supplier, with a comment.

    The reviewer is the key's holder. `risk_version` is the version the reviewer
    saw: a decision on an older one gets 409. Screening matches may be judged in
    the same request (`not_same` is remembered and never raised again; `confirmed`
    blocks approval); approving a supplier with a sanctions match needs every
    such match ruled `not_same`. Decisions are appended, never changed, and
    every attempt is audited.
    """
    settings = request.app.state.settings
    current = await reader.get_row(
        SUPPLIER_RISK,
        encode_detail,
        tenant_id=key.tenant_id,
        key={"supplier_id": supplier_id},
        unless_version=frozenset(),
        primary=True,
    )
    if not current.rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "supplier not found")
    row = current.rows[0].row
    reasons = parse_reasons_json(row["reasons_json"])
    verdicts = [MatchVerdict(v.list_name, v.entry_id, v.verdict.value) for v in body.match_verdicts]
    try:
        check_decision(body.decision.value, verdicts)
    except ReviewRequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if body.decision.value == "approve" and body.risk_version == row["risk_version"]:
        ruled_out = {
            f"screening:{v.list_name}/{v.entry_id}" for v in verdicts if v.verdict == "not_same"
        }
        open_matches = [
            r.evidence
            for r in reasons
            if r.code in ("sanctions_match", "sanctions_confirmed") and r.evidence not in ruled_out
        ]
        if open_matches:
            detail = f"approval needs these screening matches ruled not_same: {open_matches}"
            await audit_refusal(
                settings, key, supplier_id=supplier_id, idempotency_key=idempotency_key,
                detail=detail,
            )  # fmt: skip
            raise HTTPException(status.HTTP_409_CONFLICT, detail)
    try:
        recorded = await record_review(
            settings,
            key,
            supplier_id=supplier_id,
            decision=body.decision.value,
            comment=body.comment,
            risk_version=body.risk_version,
            current_version=row["risk_version"],
            reasons_seen=[r.__dict__ for r in reasons],
            verdicts=verdicts,
            idempotency_key=idempotency_key,
            body_hash=request_hash({"supplier_id": supplier_id, **body.model_dump(mode="json")}),
        )
    except ReviewRequestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if recorded.outcome == "stale":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"risk version {body.risk_version} is no longer current ({row['risk_version']}): "
            "reload the supplier's risk and decide again",
        )
    if recorded.outcome == "conflict":
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "this Idempotency-Key was already used for a different request",
        )
    assert recorded.decision_id is not None and recorded.decided_at is not None
    public = ReviewPublic(
        decision_id=recorded.decision_id,
        supplier_id=supplier_id,
        decision=body.decision,
        reviewer=recorded.reviewer,
        risk_version=body.risk_version,
        decided_at=recorded.decided_at,
        replayed=recorded.outcome == "replayed",
    )
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=status.HTTP_200_OK if public.replayed else status.HTTP_201_CREATED,
    )
