"""Stripe's list endpoints under ``/stripe``: ``GET /v1/<resource>``.

As Stripe documents them: newest first (``created`` descending, then id);
``limit`` 1-100 (default 10); ``starting_after`` / ``ending_before`` cursors (one
of them); ``created`` as an exact value or ``created[gt|gte|lt|lte]``;
``{"object": "list", "url", "has_more", "data"}``. The secret key, as a Bearer
token or as the HTTP Basic username, picks the tenant.
"""

from __future__ import annotations

import re
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.server.context import (
    KeyState,
    Sandbox,
    basic_username,
    bearer,
    json_response,
    page_json,
)

RESOURCES = {
    "customers": "customer",
    "charges": "charge",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "balance_transactions": "balance_transaction",
}
# Filters Stripe offers on these lists that the sandbox does not implement:
# refused by name rather than ignored, so a client never gets a silently wrong page.
UNSUPPORTED = {
    "customer",
    "email",
    "status",
    "subscription",
    "payment_intent",
    "transfer_group",
    "price",
    "type",
    "source",
    "payout",
    "currency",
    "collection_method",
    "due_date",
    "test_clock",
    "current_period_end",
    "current_period_start",
}
CREATED = re.compile(r"^created(?:\[(gt|gte|lt|lte)\])?$")
API_VERSION = "2024-06-20"
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def mask_key(key: str) -> str:
    """Stripe's way of naming a key in an error: the prefix and the last four characters."""
    m = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    prefix, rest = (m.group(1), m.group(2)) if m else ("", key)
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


def _headers() -> dict[str, str]:
    return {"Request-Id": "req_" + secrets.token_hex(7), "Stripe-Version": API_VERSION}


def error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> Response:
    err: dict[str, str] = {"message": message, "type": type_}
    if code:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        err["param"] = param
    headers = _headers()
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
    return json_response({"error": err}, status, headers)


def error_body(status: int) -> dict[str, dict[str, str]]:
    """Bodies of injected faults."""
    if status == 429:
        return {
            "error": {
                "code": "rate_limit",
                "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                "message": "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                "type": "invalid_request_error",
            }
        }
    return {
        "error": {
            "message": "An unknown error occurred, please try again.",
            "type": "api_error",
        }
    }


def register(app: FastAPI, sb: Sandbox) -> None:
    def list_objects(request: Request, resource: str) -> Response:
        if resource not in RESOURCES:
            return error(
                404,
                f"Unrecognized request URL (GET: /v1/{resource}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        key = bearer(request) or basic_username(request)
        check = sb.keys.check("stripe", key)
        if check.state is KeyState.MISSING:
            return error(401, NO_KEY)
        if check.state is KeyState.EXPIRED:
            return error(
                401, f"Expired API Key provided: {mask_key(key or '')}", code="api_key_expired"
            )
        if check.state is not KeyState.OK or check.tenant_id is None:
            return error(401, f"Invalid API Key provided: {mask_key(key or '')}")

        limit = 10
        bounds: dict[str, int] = {}
        starting_after = ending_before = None
        for name, value in request.query_params.multi_items():
            if name == "limit":
                try:
                    limit = int(value)
                except ValueError:
                    return error(
                        400,
                        f"Invalid integer: {value}",
                        code="parameter_invalid_integer",
                        param="limit",
                    )
                if not 1 <= limit <= 100:
                    return error(
                        400,
                        "This value must be greater than or equal to 1 and less than or "
                        "equal to 100.",
                        code="parameter_invalid_integer",
                        param="limit",
                    )
            elif name == "starting_after":
                starting_after = value
            elif name == "ending_before":
                ending_before = value
            elif name in ("expand[]", "expand") or name.startswith("expand["):
                continue
            elif m := CREATED.match(name):
                try:
                    ts = int(value)
                except ValueError:
                    return error(
                        400,
                        f"Invalid integer: {value}",
                        code="parameter_invalid_integer",
                        param=name,
                    )
                if m.group(1) is None:
                    bounds["gte"] = bounds["lte"] = ts
                else:
                    bounds[m.group(1)] = ts
            elif name in UNSUPPORTED:
                return error(
                    400, f"The sandbox does not filter /v1/{resource} by {name}.", param=name
                )
            else:
                return error(400, f"Received unknown parameter: {name}", param=name)
        if starting_after and ending_before:
            return error(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
            )

        ref = sb.store.table(check.tenant_id, "stripe", resource)
        if ref is None:
            return error(404, f"No data for /v1/{resource}")
        start, end = sb.store.seq_range(ref, **bounds)
        # Rows are stored oldest first; Stripe lists newest first.
        if ending_before:
            at = sb.store.seq_of(ref, ending_before)
            if at is None:
                return error(
                    400,
                    f"No such {RESOURCES[resource]}: '{ending_before}'",
                    code="resource_missing",
                    param="ending_before",
                )
            lo = max(start, at + 1)
            hi = min(end, lo + limit)
            has_more = hi < end
        else:
            top = end
            if starting_after:
                at = sb.store.seq_of(ref, starting_after)
                if at is None:
                    return error(
                        400,
                        f"No such {RESOURCES[resource]}: '{starting_after}'",
                        code="resource_missing",
                        param="starting_after",
                    )
                top = min(end, at)
            hi = max(top, start)
            lo = max(start, hi - limit)
            has_more = lo > start
        rows = sb.store.rows(ref, lo, hi)
        payloads = [payload for _id, payload in reversed(rows)]
        body = (
            '{"object":"list","data":'
            + page_json(payloads)
            + ',"has_more":'
            + ("true" if has_more else "false")
            + ',"url":"/v1/'
            + resource
            + '"}'
        )
        return json_response(body, headers=_headers())

    @app.get("/stripe/v1/{resource}")
    def stripe_list(request: Request, resource: str) -> Response:
        return list_objects(request, resource)

    @app.api_route("/stripe/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
    def stripe_unknown(request: Request, rest: str) -> Response:
        return error(
            404,
            f"Unrecognized request URL ({request.method}: /{rest}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )
