"""The tenant's CRM over its REST API: leads, contacts, companies, activities, deals.

``GET /api/v1/<table>?page&per_page&updated_since`` lists records in
``updated_at`` then ``id`` order, ``updated_since`` inclusive. Page numbers over
a set that changes while it is read can skip a record (an update moves a record
from an already-read page to the end, and everything behind it shifts one
place forward), so the connector pages by key instead: after each page it asks
again from the page's newest ``updated_at`` (page 1), re-reading the few records
that share that second. Only when a whole page shares one second does it step
to the next page number under the same ``updated_since``. The cursor after each
page is that ``(updated_since, page)`` pair; the high-water mark moves to the
newest ``updated_at`` once the window is read to its end.

The source is ``crm_api`` in asset keys, lake paths and dbt sources, distinct
from ``crm_export``, the CSV export a tenant drops in its inbox.

Activities are events: stamped once, never updated (``updated_at`` is their
``created_at``), so a windowed load asks ``updated_since`` the window's start,
keeps the records stamped before its end (the API has no upper bound) and stops
at the first page that goes past it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage
from connectors.landing import TableSpec
from connectors.sources._common import (
    in_window,
    iso_z,
    require_list,
    require_objects,
    secret_value,
    utc_time,
)

NAME = "crm_api"
PAGE_SIZE = 100  # the API's maximum


def _spec(table: str, *required: str, **columns: pa.DataType) -> TableSpec:
    return TableSpec(
        source=NAME,
        name=table,
        date_field="created_at",
        date_format="iso",
        primary_key=("id",),
        required=("updated_at", *required),
        columns={
            "id": pa.string(),
            "created_at": pa.string(),
            "updated_at": pa.string(),
            **columns,
        },
    )


TABLES: dict[str, TableSpec] = {
    "leads": _spec("leads", "email", email=pa.string(), status=pa.string()),
    "contacts": _spec("contacts", "email", email=pa.string(), lead_id=pa.string()),
    "companies": _spec("companies", "name", name=pa.string()),
    "activities": _spec("activities", "type", type=pa.string(), lead_id=pa.string()),
    "deals": _spec("deals", "stage", stage=pa.string(), is_won=pa.bool_(), is_closed=pa.bool_()),
}


def credential(secret: str) -> Credential:
    token = secret_value(secret, "token", "access_token", "api_key")
    return Credential(headers={"Authorization": f"Bearer {token}"}, secrets=[token])


def check_page(data: Any) -> None:
    items = require_list(data, "data", where=" (CRM list)")
    require_objects(items, "data")
    meta = data.get("meta")
    if not isinstance(meta, dict) or not all(
        isinstance(meta.get(k), int) for k in ("page", "total_pages")
    ):
        raise MalformedPage("'meta' with integer page and total_pages is missing (CRM list)")


def _updated(record: Any) -> datetime | None:
    return utc_time(record.get("updated_at")) if isinstance(record, dict) else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def read(ctx: ReadContext) -> Iterator[Page]:
    high_water = None if ctx.full_refresh else ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        start = iso_z(ctx.window[0])
        window = {"base": start, "since": start, "page": 1, "max_updated": None}
    elif window is None or (ctx.full_refresh and window.get("base") is not None):
        window = {"base": high_water, "since": high_water, "page": 1, "max_updated": high_water}
    per_page = min(ctx.page_size, PAGE_SIZE)
    path = f"api/v1/{ctx.spec.name}"
    while True:
        params = {"page": window["page"], "per_page": per_page, "updated_since": window["since"]}
        data = ctx.client.get_json(path, params=params, check=check_page)
        records = data["data"]
        origin = ctx.client.describe("GET", path, params)
        seen = [u for u in map(_updated, records) if u is not None]
        newest = max(seen, default=None)
        max_updated = max(
            [m for m in (_parse(window["max_updated"]), newest) if m is not None], default=None
        )
        last = len(records) < per_page or data["meta"]["page"] >= data["meta"]["total_pages"]
        if ctx.window is not None:
            records, past = in_window(records, "updated_at", ctx.window)
            last = last or past
        if last:
            done = {"high_water": _iso(max_updated) or ctx.cursor.get("high_water"), "window": None}
            yield Page(records, origin, done)
            return
        since = _parse(window["since"])
        if newest is not None and (since is None or newest > since):
            # Ask again from the newest second of this page: no shift can skip a record.
            window = {**window, "since": _iso(newest), "page": 1}
        else:
            window = {**window, "page": window["page"] + 1}
        window["max_updated"] = _iso(max_updated)
        yield Page(records, origin, {"high_water": ctx.cursor.get("high_water"), "window": window})


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset({"activities"}),
)
