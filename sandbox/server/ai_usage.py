"""The AI service's usage API under ``/ai_usage``: ``GET /v1/usage``.

``start_time`` (inclusive) and ``end_time`` (exclusive), as Unix seconds or
ISO-8601; ``page_size`` (1-1000, default 100); ``page_token`` (the previous
response's ``next_page_token``; send the same time bounds with it). Records in
``timestamp`` then ``id`` order; ``{"data": [...], "next_page_token": str | null}``.
Bearer token auth.
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

KNOWN_PARAMS = {"start_time", "end_time", "page_token", "page_size"}


def error(status: int, type_: str, message: str, param: str | None = None) -> Response:
    return json_response({"error": {"type": type_, "message": message, "param": param}}, status)


def error_body(status: int) -> dict[str, dict[str, str | None]]:
    if status == 429:
        return {
            "error": {"type": "rate_limit_error", "message": "Rate limit reached.", "param": None}
        }
    if status == 503:
        return {"error": {"type": "overloaded_error", "message": "Overloaded.", "param": None}}
    return {"error": {"type": "api_error", "message": "Internal server error.", "param": None}}


def register(app: FastAPI, sb: Sandbox) -> None:
    @app.get("/ai_usage/v1/usage")
    def usage(request: Request) -> Response:
        check = sb.keys.check("ai_usage", bearer(request))
        if check.state is KeyState.EXPIRED:
            return error(401, "authentication_error", "API key expired.")
        if check.state is not KeyState.OK or check.tenant_id is None:
            return error(401, "authentication_error", "Invalid API key.")
        q = request.query_params
        unknown = sorted(set(q) - KNOWN_PARAMS)
        if unknown:
            return error(
                400, "invalid_request_error", f"Unknown parameter: {unknown[0]}", unknown[0]
            )
        try:
            page_size = int(q.get("page_size", "100"))
        except ValueError:
            return error(400, "invalid_request_error", "page_size must be an integer.", "page_size")
        if not 1 <= page_size <= 1000:
            return error(400, "invalid_request_error", "page_size must be 1-1000.", "page_size")
        bounds = {}
        for name, key in (("start_time", "gte"), ("end_time", "lt")):
            if q.get(name):
                try:
                    bounds[key] = parse_time(q[name])
                except ValueError:
                    return error(400, "invalid_request_error", f"Invalid {name}.", name)
        ref = sb.store.table(check.tenant_id, "ai_usage", "usage")
        if ref is None:
            return error(404, "not_found_error", "No usage.")
        start, end = sb.store.seq_range(ref, **bounds)
        if q.get("page_token"):
            try:
                tok = decode_cursor(q["page_token"])
                if tok.get("t") != check.tenant_id:
                    raise ValueError("token of another tenant")
                start = max(start, int(tok["s"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                return error(400, "invalid_request_error", "Invalid page_token.", "page_token")
        hi = min(end, start + page_size)
        rows = sb.store.rows(ref, start, hi)
        nxt = encode_cursor({"t": check.tenant_id, "s": hi}) if hi < end else None
        body = (
            '{"data":'
            + page_json([payload for _id, payload in rows])
            + ',"next_page_token":'
            + (f'"{nxt}"' if nxt else "null")
            + "}"
        )
        return json_response(body)
