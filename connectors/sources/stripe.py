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

A table's first load has no high-water mark, so it reads every object the
account ever created, whatever its age.

Stripe objects change after creation (a charge is refunded or disputed, an
invoice paid, a subscription cancelled); ``created[gte]`` does not see that.
(A dispute's events carry the dispute, not the charge: the charge is re-read
by id, see ``CHANGE_EVENTS``.)
Customers, charges, invoices and subscriptions therefore also read
``GET /v1/events`` (``types[]`` per table, see ``CHANGE_EVENTS``) from the
events mark, after the first load: each event's ``data.object`` is the object
as it became, landed with the event's ``created`` as its version, so the lake
keeps the latest state even though events come newest first. The events mark
starts when the first load starts and moves like the high-water mark (a window
with ``starting_after``, saved per page). Stripe keeps events for 30 days: a
table not loaded for longer needs a ``full_refresh`` to catch up.

Balance transactions have no change events (pending becomes available on
``available_on``): each incremental load re-reads the last ``ROLLING_DAYS`` of
them by ``created``.

A windowed load (``bizos ingest --since``) is one list window with both bounds,
``created[gte]`` and ``created[lt]``, and no cursor saved.

Amounts are integers in the currency's minor unit, with the currency beside.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage, MalformedResponse
from connectors.landing import TableSpec, version_of
from connectors.sources._common import later, require_list, require_objects, secret_value
from connectors.state import Cursor

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


CHANGE_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers": ("customer", ("customer.*",)),
    "charges": ("charge", ("charge.*",)),
    "invoices": ("invoice", ("invoice.*",)),
    "subscriptions": ("subscription", ("customer.subscription.*",)),
}
"""Per table: the ``object`` its events carry and the event types (``types[]``) that
change it. ``charge.*`` also matches ``charge.dispute.*``, whose object is a dispute,
not a charge, and Stripe sends no ``charge.updated`` when a charge is disputed: the
disputed charge is re-read (``GET /v1/charges/<id>``) and landed as it is now."""
ROLLING_DAYS = 35
"""Balance transactions have no change events (pending becomes available on
``available_on``, a few days after ``created``): every incremental load re-reads the
ones created in the last 35 days, the longest a payout schedule holds funds."""
DAY_S = 86_400


def _list(
    ctx: ReadContext, path: str, window: dict[str, Any], extra: dict[str, Any]
) -> Iterator[tuple[list[dict[str, Any]], str, dict[str, Any], bool]]:
    """Pages of one Stripe list window, newest first: ``(records, origin, window after
    the page, last page)``. ``window`` holds ``gte``/``lt`` bounds, ``starting_after``
    and ``max_created``."""
    while True:
        params: dict[str, Any] = {
            "limit": min(ctx.page_size, PAGE_SIZE),
            "starting_after": window["starting_after"],
            "created[gte]": window["gte"],
            "created[lt]": window.get("lt"),
            **extra,
        }
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
        last = not records or not data["has_more"]
        if not last and not ids:
            raise MalformedResponse(
                f"stripe sent a page without any object id but with more to come: {origin}",
                source=NAME,
                tenant_id=ctx.client.tenant_id,
            )
        yield records, origin, window, last
        if last:
            return


def _open(gte: int | None) -> dict[str, Any]:
    return {"gte": gte, "starting_after": None, "max_created": None}


def read(ctx: ReadContext) -> Iterator[Page]:
    """The table's new objects from its list, then (after the first load) the
    changes to its objects from ``/v1/events``; see the module doc."""
    table = ctx.spec.name
    path = f"v1/{table}"
    if ctx.window is not None:
        start, end = ctx.window
        bounded = {**_open(_epoch_up(start)), "lt": _epoch_up(end)}
        for records, origin, _after, _last in _list(ctx, path, bounded, {}):
            yield Page(records, origin, {})
        return

    high_water = ctx.cursor.get("high_water")
    # Changes are read from the moment the first load started: that load's list
    # already saw every earlier state.
    events = ctx.cursor.get("events") or {
        "since": int(ctx.now.timestamp()),
        "window": None,
    }
    first_load = high_water is None and ctx.cursor.get("window") is None

    def cursor(list_window: dict[str, Any] | None, mark: Any, ev: dict[str, Any]) -> Cursor:
        state: dict[str, Any] = {"high_water": mark, "window": list_window}
        if table in CHANGE_EVENTS:
            state["events"] = ev
        return state

    window = ctx.cursor.get("window")
    if window is None or (ctx.full_refresh and window.get("gte") is not None):
        gte = None if ctx.full_refresh else high_water
        if table == "balance_transactions" and gte is not None:
            gte = min(gte, int(ctx.now.timestamp()) - ROLLING_DAYS * DAY_S)
        window = _open(gte)
    # Real Stripe leaves canceled subscriptions out unless `status=all`; the
    # sandbox lists every status and refuses the filter (see docs/connectors.md).
    for records, origin, after, last in _list(ctx, path, window, {}):
        if last:
            high_water = later(high_water, after["max_created"])
            yield Page(records, origin, cursor(None, high_water, events))
        else:
            yield Page(records, origin, cursor(after, high_water, events))

    if table not in CHANGE_EVENTS or first_load or ctx.full_refresh:
        return
    yield from _changes(ctx, events, lambda ev: cursor(None, high_water, ev))


def _changes(
    ctx: ReadContext, events: dict[str, Any], cursor: Callable[[dict[str, Any]], Cursor]
) -> Iterator[Page]:
    """Each event's ``data.object`` since the events mark, versioned by the event's
    ``created``: pages are newest first, and the lake keeps the highest version."""
    kind, types = CHANGE_EVENTS[ctx.spec.name]
    window = events.get("window") or _open(events.get("since"))
    pages = _list(ctx, "v1/events", window, {"types[]": list(types)})
    now = version_of(int(ctx.now.timestamp()))
    refetched: set[str] = set()
    seen: Counter[tuple[Any, int]] = Counter()
    for records, origin, after, last in pages:
        objects: list[dict[str, Any]] = []
        versions: list[int | None] = []
        for event in records:
            data = event.get("data")
            obj = data.get("object") if isinstance(data, dict) else None
            if not isinstance(obj, dict):
                continue
            if obj.get("object") == kind:
                objects.append(obj)
                versions.append(event_version(event, obj, seen))
            elif kind == "charge" and obj.get("object") == "dispute":
                charge_id = obj.get("charge")
                if isinstance(charge_id, str) and charge_id and charge_id not in refetched:
                    refetched.add(charge_id)
                    # As it is now: newer than any event read in this load.
                    objects.append(_retrieve_charge(ctx, charge_id))
                    versions.append(now)
        if last:
            mark = later(events.get("since"), after["max_created"])
            yield Page(objects, origin, cursor({"since": mark, "window": None}), versions)
        else:
            yield Page(
                objects, origin, cursor({"since": events.get("since"), "window": after}), versions
            )


def event_version(
    event: dict[str, Any], obj: dict[str, Any], seen: Counter[tuple[Any, int]]
) -> int | None:
    """The version of the object an event carries: its ``created``, and among one
    object's events of the same second (read newest first) each later one older."""
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        return None
    key = (obj.get("id"), created)
    earlier_reads = seen[key]
    seen[key] += 1
    return version_of(created, older_in_same_second=earlier_reads)


def check_charge(data: Any) -> None:
    if not isinstance(data, dict) or data.get("object") != "charge":
        raise MalformedPage("not a charge object (GET /v1/charges/<id>)")


def _retrieve_charge(ctx: ReadContext, charge_id: str) -> dict[str, Any]:
    charge: dict[str, Any] = ctx.client.get_json(
        f"v1/charges/{quote(charge_id, safe='')}", check=check_charge
    )
    return charge


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset(),
)
