"""The tenant's CRM REST API under ``/crm_api``: ``GET /api/v1/<resource>``.

``page`` (from 1) and ``per_page`` (1-100, default 25) over the records ordered by
``updated_at`` then ``id``; ``updated_since`` (ISO-8601, inclusive) for
incremental loads; ``{"data": [...], "meta": {"page", "per_page", "total",
"total_pages"}}``. Bearer token auth.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.server.context import KeyState, Sandbox, bearer, json_response, page_json, parse_time

RESOURCES = ("leads", "contacts", "companies", "activities", "deals")
KNOWN_PARAMS = {"page", "per_page", "updated_since"}


def error(status: int, code: str, message: str, param: str | None = None) -> Response:
    err = {"code": code, "message": message}
    if param:
        err["param"] = param
    headers = {"WWW-Authenticate": 'Bearer realm="crm_api"'} if status == 401 else None
    return json_response({"error": err}, status, headers)


def error_body(status: int) -> dict[str, dict[str, str]]:
    if status == 429:
        return {"error": {"code": "rate_limited", "message": "Too many requests, slow down."}}
    if status == 503:
        return {"error": {"code": "unavailable", "message": "Service temporarily unavailable."}}
    return {"error": {"code": "internal_error", "message": "Something went wrong on our side."}}


def register(app: FastAPI, sb: Sandbox) -> None:
    @app.get("/crm_api/api/v1/{resource}")
    def crm_list(request: Request, resource: str) -> Response:
        if resource not in RESOURCES:
            return error(404, "not_found", f"No such resource: {resource}")
        check = sb.keys.check("crm_api", bearer(request))
        if check.state is KeyState.EXPIRED:
            return error(401, "token_expired", "The access token has expired.")
        if check.state is not KeyState.OK or check.tenant_id is None:
            return error(401, "unauthorized", "Missing or invalid bearer token.")
        q = request.query_params
        unknown = sorted(set(q) - KNOWN_PARAMS)
        if unknown:
            return error(422, "invalid_parameter", f"Unknown parameter: {unknown[0]}", unknown[0])
        try:
            page = int(q.get("page", "1"))
            per_page = int(q.get("per_page", "25"))
        except ValueError:
            return error(422, "invalid_parameter", "page and per_page must be integers.")
        if page < 1:
            return error(422, "invalid_parameter", "page must be at least 1.", "page")
        if not 1 <= per_page <= 100:
            return error(
                422, "invalid_parameter", "per_page must be between 1 and 100.", "per_page"
            )
        since = None
        if q.get("updated_since"):
            try:
                since = parse_time(q["updated_since"])
            except ValueError:
                return error(
                    422,
                    "invalid_parameter",
                    "updated_since must be an ISO-8601 timestamp.",
                    "updated_since",
                )
        ref = sb.store.table(check.tenant_id, "crm_api", resource)
        if ref is None:
            return error(404, "not_found", f"No such resource: {resource}")
        start, end = sb.store.seq_range(ref, gte=since)
        total = end - start
        lo = start + (page - 1) * per_page
        rows = sb.store.rows(ref, lo, min(end, lo + per_page))
        body = (
            '{"data":'
            + page_json([payload for _id, payload in rows])
            + f',"meta":{{"page":{page},"per_page":{per_page},"total":{total},'
            + f'"total_pages":{-(-total // per_page)}}}}}'
        )
        return json_response(body)
