"""Stripe: customers, charges, invoices, subscriptions, balance transactions.

Stripe lists are newest first (``limit``, ``starting_after``, ``has_more``) and
filter by ``created[gte]``. A load is a *window*: every object created at or
after the high-water mark, read newest to oldest. While the window is open the
cursor holds its lower bound and the last id landed (``starting_after``), so a
run that dies resumes exactly after it; new objects created meanwhile sit ahead
of the window's start and are picked up by the next one. Only when the window
has been read to its end does the high-water mark move, to the newest
``created`` seen. The next window starts at that same second (``gte``), so a
few objects are read twice and the lake's merge by id keeps one.

Stripe objects change after creation (a charge is refunded, an invoice paid);
``created[gte]`` does not see that. A periodic ``full_refresh`` re-reads every
object and the merge keeps the latest version.

A windowed load (charges and balance transactions: events) is one window with
both bounds, ``created[gte]`` and ``created[lt]``, and no cursor saved.

Amounts are integers in the currency's minor unit, with the currency beside.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage, MalformedResponse
from connectors.landing import TableSpec
from connectors.sources._common import later, require_list, require_objects, secret_value

NAME = "stripe"
PAGE_SIZE = 100  # Stripe's maximum


def _spec(name: str, *, required: tuple[str, ...] = (), **columns: pa.DataType) -> TableSpec:
    return TableSpec(
        source=NAME,
        name=name,
        date_field="created",
        date_format="epoch",
        primary_key=("id",),
        required=required,
        columns={"id": pa.string(), "object": pa.string(), "created": pa.int64(), **columns},
    )


MONEY = {"currency": pa.string(), "livemode": pa.bool_()}

TABLES: dict[str, TableSpec] = {
    "customers": _spec("customers", email=pa.string(), livemode=pa.bool_()),
    "charges": _spec(
        "charges",
        required=("amount", "currency"),
        amount=pa.int64(),
        amount_refunded=pa.int64(),
        status=pa.string(),
        paid=pa.bool_(),
        refunded=pa.bool_(),
        **MONEY,
    ),
    "invoices": _spec(
        "invoices",
        required=("customer", "currency"),
        amount_due=pa.int64(),
        amount_paid=pa.int64(),
        total=pa.int64(),
        status=pa.string(),
        **MONEY,
    ),
    "subscriptions": _spec(
        "subscriptions", required=("customer",), status=pa.string(), livemode=pa.bool_()
    ),
    "balance_transactions": _spec(
        "balance_transactions",
        required=("amount", "currency"),
        amount=pa.int64(),
        fee=pa.int64(),
        net=pa.int64(),
        type=pa.string(),
        **MONEY,
    ),
}


def credential(secret: str) -> Credential:
    key = secret_value(secret, "api_key", "secret_key", "key")
    return Credential(headers={"Authorization": f"Bearer {key}"}, secrets=[key])


def check_list(data: Any) -> None:
    items = require_list(data, "data", where=" (Stripe list)")
    require_objects(items, "data")
    if not isinstance(data.get("has_more"), bool):
        raise MalformedPage("'has_more' is missing or not a boolean (Stripe list)")


def _epoch_up(moment: datetime) -> int:
    """The first whole second at or after ``moment`` (``created`` is whole seconds)."""
    return math.ceil(moment.timestamp())


def read(ctx: ReadContext) -> Iterator[Page]:
    table = ctx.spec.name
    high_water = ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        start, end = ctx.window
        window = {
            "gte": _epoch_up(start),
            "lt": _epoch_up(end),
            "starting_after": None,
            "max_created": None,
        }
    elif window is None or (ctx.full_refresh and window.get("gte") is not None):
        window = {
            "gte": None if ctx.full_refresh else high_water,
            "starting_after": None,
            "max_created": None,
        }
    while True:
        params: dict[str, Any] = {
            "limit": min(ctx.page_size, PAGE_SIZE),
            "starting_after": window["starting_after"],
            "created[gte]": window["gte"],
            "created[lt]": window.get("lt"),
        }
        # Real Stripe leaves canceled subscriptions out unless `status=all`; the
        # sandbox lists every status and refuses the filter (see docs/connectors.md).
        path = f"v1/{table}"
        data = ctx.client.get_json(path, params=params, check=check_list)
        records = data["data"]
        created = [
            r["created"]
            for r in records
            if isinstance(r.get("created"), int) and not isinstance(r.get("created"), bool)
        ]
        ids = [r["id"] for r in records if isinstance(r.get("id"), str) and r["id"]]
        window = {
            **window,
            "max_created": later(window["max_created"], max(created, default=None)),
            "starting_after": ids[-1] if ids else window["starting_after"],
        }
        origin = ctx.client.describe("GET", path, params)
        if not records or not data["has_more"]:
            yield Page(
                records,
                origin,
                {"high_water": later(high_water, window["max_created"]), "window": None},
            )
            return
        if not ids:
            raise MalformedResponse(
                f"stripe sent a page without any object id but with more to come: {origin}",
                source=NAME,
                tenant_id=ctx.client.tenant_id,
            )
        yield Page(records, origin, {"high_water": high_water, "window": window})


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset({"charges", "balance_transactions"}),
)
