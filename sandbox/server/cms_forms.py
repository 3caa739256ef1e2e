"""The content site's form submissions under ``/cms_forms``: ``GET /api/submissions``.

``since`` (ISO-8601, inclusive) and ``limit`` (1-200, default 50) select the
first page, in ``submitted_at`` then ``id`` order; ``cursor`` (the previous
page's opaque ``next_cursor``) continues from where it stopped;
``{"results": [...], "next_cursor": str | null}``. Bearer token auth.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.server.context import (
    KeyState,
    Sandbox,
    bearer,
    decode_cursor,
    encode_cursor,
    json_response,
    page_json,
    parse_time,
)

KNOWN_PARAMS = {"since", "cursor", "limit"}


def error(status: int, code: str, detail: str) -> Response:
    return json_response({"error": code, "detail": detail}, status)


def error_body(status: int) -> dict[str, str]:
    if status == 429:
        return {"error": "rate_limited", "detail": "Too many requests."}
    if status == 503:
        return {"error": "unavailable", "detail": "The forms service is down for maintenance."}
    return {"error": "server_error", "detail": "Unexpected error."}


def register(app: FastAPI, sb: Sandbox) -> None:
    @app.get("/cms_forms/api/submissions")
    def submissions(request: Request) -> Response:
        check = sb.keys.check("cms_forms", bearer(request))
        if check.state is KeyState.EXPIRED:
            return error(401, "token_expired", "This API token has expired.")
        if check.state is not KeyState.OK or check.tenant_id is None:
            return error(401, "unauthorized", "A valid API token is required.")
        q = request.query_params
        unknown = sorted(set(q) - KNOWN_PARAMS)
        if unknown:
            return error(400, "bad_request", f"Unknown parameter: {unknown[0]}")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            return error(400, "bad_request", "limit must be an integer.")
        if not 1 <= limit <= 200:
            return error(400, "bad_request", "limit must be between 1 and 200.")
        ref = sb.store.table(check.tenant_id, "cms_forms", "submissions")
        if ref is None:
            return error(404, "not_found", "No submissions.")
        _, end = sb.store.seq_range(ref)
        if q.get("cursor"):
            try:
                cur = decode_cursor(q["cursor"])
                start = int(cur["s"])
                if cur.get("t") != check.tenant_id:
                    raise ValueError("cursor of another tenant")
            except (ValueError, KeyError, TypeError):
                return error(400, "bad_request", "Invalid cursor.")
        elif q.get("since"):
            try:
                start, _ = sb.store.seq_range(ref, gte=parse_time(q["since"]))
            except ValueError:
                return error(400, "bad_request", "since must be an ISO-8601 timestamp.")
        else:
            start = 0
        hi = min(end, start + limit)
        rows = sb.store.rows(ref, start, hi)
        nxt = encode_cursor({"t": check.tenant_id, "s": hi}) if hi < end else None
        body = (
            '{"results":'
            + page_json([payload for _id, payload in rows])
            + ',"next_cursor":'
            + (f'"{nxt}"' if nxt else "null")
            + "}"
        )
        return json_response(body)
