"""Stripe's list endpoints under ``/stripe``: ``GET /v1/<resource>``.

As Stripe documents them: newest first (``created`` descending, then id);
``limit`` 1-100 (default 10); ``starting_after`` / ``ending_before`` cursors (one
of them); ``created`` as an exact value or ``created[gt|gte|lt|lte]``;
``{"object": "list", "url", "has_more", "data"}``. The secret key, as a Bearer
token or as the HTTP Basic username, picks the tenant.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

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
from sandbox.server.stripe_changes import StripeChanges

RESOURCES = {
    "customers": "customer",
    "charges": "charge",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "balance_transactions": "balance_transaction",
    "events": "event",
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
    changes = StripeChanges(sb.data_dir)

    def tenant_of(request: Request) -> str | Response:
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
        return check.tenant_id

    def list_objects(request: Request, resource: str) -> Response:
        if resource not in RESOURCES:
            return error(
                404,
                f"Unrecognized request URL (GET: /v1/{resource}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        tenant_id = tenant_of(request)
        if isinstance(tenant_id, Response):
            return tenant_id
        types: list[str] = []

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
            elif resource == "events" and name in ("types[]", "type"):
                types.append(value)
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

        ref = sb.store.table(tenant_id, "stripe", resource)
        if ref is None and resource != "events":
            return error(404, f"No data for /v1/{resource}")
        # Objects created after the generated data come first (newest first), then
        # the generated rows, each in its latest version.
        extra = changes.added(tenant_id, resource, bounds, types)
        extra_ids = [obj["id"] for obj in extra]
        start, end = sb.store.seq_range(ref, **bounds) if ref is not None else (0, 0)
        if extra and ending_before:
            return error(400, "The sandbox pages lists with live changes by starting_after only.")
        if ending_before:
            assert ref is not None
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
            head: list[dict[str, Any]] = []
        else:
            top = end
            head = extra
            if starting_after and starting_after in extra_ids:
                head = extra[extra_ids.index(starting_after) + 1 :]
            elif starting_after:
                head = []
                at = sb.store.seq_of(ref, starting_after) if ref is not None else None
                if at is None:
                    return error(
                        400,
                        f"No such {RESOURCES[resource]}: '{starting_after}'",
                        code="resource_missing",
                        param="starting_after",
                    )
                top = min(end, at)
            rest, head = head, head[:limit]
            hi = max(top, start)
            lo = max(start, hi - (limit - len(head)))
            has_more = lo > start or len(rest) > len(head)
        rows = sb.store.rows(ref, lo, hi) if ref is not None else []
        payloads = [json.dumps(obj) for obj in head]
        replaced = changes.has_changes(tenant_id, resource)
        for row_id, payload in reversed(rows):
            latest = changes.latest(tenant_id, resource, row_id) if replaced else None
            payloads.append(payload if latest is None else json.dumps(latest))
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

    def find_charge(tenant_id: str, charge_id: str) -> dict[str, Any] | None:
        latest = changes.latest(tenant_id, "charges", charge_id)
        if latest is not None:
            return latest
        ref = sb.store.table(tenant_id, "stripe", "charges")
        at = sb.store.seq_of(ref, charge_id) if ref is not None else None
        if ref is None or at is None:
            return None
        ((_id, payload),) = sb.store.rows(ref, at, at + 1)
        found: dict[str, Any] = json.loads(payload)
        return found

    def moment(tenant_id: str) -> int:
        """Now, but after the generated data and after every earlier change: Stripe's
        lists order by ``created`` (whole seconds), and each change lists as the newest."""
        return max(
            int(time.time()), int(sb.as_of.timestamp()) + 1, changes.last_created(tenant_id) + 1
        )

    @app.post("/stripe/v1/refunds")
    async def create_refund(request: Request) -> Response:
        """Stripe's ``POST /v1/refunds`` (form ``charge``, optional ``amount``): the
        charge is refunded, a refund balance transaction and a ``charge.refunded``
        event are recorded."""
        tenant_id = tenant_of(request)
        if isinstance(tenant_id, Response):
            return tenant_id
        # Stripe's bodies are application/x-www-form-urlencoded (parsed here, as
        # Starlette's form parser needs a library the project does not carry).
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        unknown = sorted(set(form) - {"charge", "amount", "reason", "metadata"})
        if unknown:
            return error(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        charge_id = str(form.get("charge") or "")
        if not charge_id:
            return error(400, "Must provide either `charge` or `payment_intent`.", param="charge")
        charge = find_charge(tenant_id, charge_id)
        if charge is None:
            return error(
                400, f"No such charge: '{charge_id}'", code="resource_missing", param="charge"
            )
        left = charge["amount"] - charge["amount_refunded"]
        if charge["status"] != "succeeded" or left <= 0:
            return error(
                400,
                f"Charge {charge_id} has already been refunded.",
                code="charge_already_refunded",
            )
        raw_amount = form.get("amount")
        try:
            amount = left if raw_amount is None else int(str(raw_amount))
        except ValueError:
            return error(
                400,
                f"Invalid integer: {raw_amount}",
                code="parameter_invalid_integer",
                param="amount",
            )
        if not 0 < amount <= left:
            return error(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                param="amount",
            )
        created = moment(tenant_id)
        refund_id = "re_3" + secrets.token_hex(12)
        txn_id = "txn_3" + secrets.token_hex(12)
        request_id = "req_" + secrets.token_hex(7)
        refunded = charge["amount_refunded"] + amount
        updated = {**charge, "amount_refunded": refunded, "refunded": refunded == charge["amount"]}
        txn = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": -amount,
            "available_on": created,
            "created": created,
            "currency": charge["currency"],
            "description": f"REFUND FOR CHARGE ({charge.get('description') or 'charge'})",
            "exchange_rate": None,
            "fee": 0,
            "fee_details": [],
            "net": -amount,
            "reporting_category": "refund",
            "source": refund_id,
            "status": "available",
            "type": "refund",
        }
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": txn_id,
            "charge": charge_id,
            "created": created,
            "currency": charge["currency"],
            "metadata": {},
            "payment_intent": charge.get("payment_intent"),
            "reason": form.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        event = {
            "id": "evt_3" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": {
                "object": updated,
                "previous_attributes": {
                    "amount_refunded": charge["amount_refunded"],
                    "refunded": charge["refunded"],
                },
            },
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": request_id, "idempotency_key": None},
            "type": "charge.refunded",
        }
        changes.record(
            tenant_id,
            [
                ("charges", updated, False),
                ("balance_transactions", txn, True),
                ("events", event, True),
            ],
        )
        return json_response(refund, headers={**_headers(), "Request-Id": request_id})

    @app.get("/stripe/v1/charges/{charge_id}")
    def retrieve_charge(request: Request, charge_id: str) -> Response:
        """Stripe's ``GET /v1/charges/<id>``: the charge as it is now."""
        tenant_id = tenant_of(request)
        if isinstance(tenant_id, Response):
            return tenant_id
        charge = find_charge(tenant_id, charge_id)
        if charge is None:
            return error(404, f"No such charge: '{charge_id}'", code="resource_missing", param="id")
        return json_response(charge, headers=_headers())

    @app.post("/_sandbox/stripe/disputes")
    async def create_dispute(request: Request) -> Response:
        """Sandbox only (Stripe has no API for it: a cardholder disputes at their bank).
        Form ``charge`` (and optional ``reason``), with the account's key: the charge
        becomes ``disputed``, a dispute balance transaction (amount and the 15.00 fee
        withdrawn) and a ``charge.dispute.created`` event, whose object is the dispute,
        are recorded. Stripe sends no ``charge.updated`` for it, and neither does this."""
        tenant_id = tenant_of(request)
        if isinstance(tenant_id, Response):
            return tenant_id
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        charge_id = str(form.get("charge") or "")
        charge = find_charge(tenant_id, charge_id) if charge_id else None
        if charge is None:
            return error(
                400, f"No such charge: '{charge_id}'", code="resource_missing", param="charge"
            )
        if charge.get("disputed"):
            return error(400, f"Charge {charge_id} has already been disputed.", param="charge")
        created = moment(tenant_id)
        dispute_id = "dp_1" + secrets.token_hex(12)
        txn_id = "txn_3" + secrets.token_hex(12)
        fee = 1500
        amount = charge["amount"] - charge["amount_refunded"]
        updated = {**charge, "disputed": True}
        txn = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": -amount,
            "available_on": created,
            "created": created,
            "currency": charge["currency"],
            "description": f"Chargeback withdrawal for {charge_id}",
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [{"amount": fee, "currency": charge["currency"], "type": "stripe_fee"}],
            "net": -amount - fee,
            "reporting_category": "dispute",
            "source": dispute_id,
            "status": "available",
            "type": "adjustment",
        }
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [txn],
            "charge": charge_id,
            "created": created,
            "currency": charge["currency"],
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge.get("payment_intent"),
            "reason": form.get("reason") or "fraudulent",
            "status": "needs_response",
        }
        event = {
            "id": "evt_3" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": {"object": dispute},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": "charge.dispute.created",
        }
        changes.record(
            tenant_id,
            [
                ("charges", updated, False),
                ("balance_transactions", txn, True),
                ("events", event, True),
            ],
        )
        return json_response(dispute, headers=_headers())

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
