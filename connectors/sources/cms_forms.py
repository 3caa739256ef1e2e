"""Form submissions from the tenant's content site (contact, demo request,
newsletter): the inbound leads.

``GET /api/submissions?since&cursor&limit`` returns ``{"results", "next_cursor"}``
in ``submitted_at`` then ``id`` order, ``since`` inclusive. A window starts at
the high-water mark; the cursor saved after each page is the provider's own
``next_cursor``, so a resumed run asks for exactly the next page. If the
provider no longer accepts a saved cursor (they expire), the window is read
again from its start: a few records twice, none lost.

The API has no upper time bound, so a windowed load asks ``since`` the window's
start and keeps the records before its end, stopping at the first page that
goes past it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage, SourceRequestError
from connectors.landing import TableSpec
from connectors.sources._common import (
    in_window,
    iso_z,
    later,
    require_list,
    require_objects,
    secret_value,
)

log = logging.getLogger(__name__)

NAME = "cms_forms"
PAGE_SIZE = 200  # the API's maximum

TABLES: dict[str, TableSpec] = {
    "submissions": TableSpec(
        source=NAME,
        name="submissions",
        date_field="submitted_at",
        date_format="iso",
        primary_key=("id",),
        # A submission without an email is no lead: it cannot be matched or contacted.
        required=("email", "form_type"),
        columns={
            "id": pa.string(),
            "submitted_at": pa.string(),
            "email": pa.string(),
            "form_type": pa.string(),
        },
    )
}


def credential(secret: str) -> Credential:
    token = secret_value(secret, "token", "api_token", "api_key")
    return Credential(headers={"Authorization": f"Bearer {token}"}, secrets=[token])


def check_page(data: Any) -> None:
    require_objects(require_list(data, "results", where=" (submissions)"), "results")
    nxt = data.get("next_cursor")
    if nxt is not None and not isinstance(nxt, str):
        raise MalformedPage("'next_cursor' is neither a string nor null")


def read(ctx: ReadContext) -> Iterator[Page]:
    high_water = None if ctx.full_refresh else ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        window = {"since": iso_z(ctx.window[0]), "cursor": None, "max_submitted": None}
    elif window is None or (ctx.full_refresh and window.get("since") is not None):
        window = {"since": high_water, "cursor": None, "max_submitted": None}
    path = "api/submissions"
    limit = min(ctx.page_size, PAGE_SIZE)
    restarted = False
    while True:
        params: dict[str, Any] = {"limit": limit}
        if window["cursor"]:
            params["cursor"] = window["cursor"]
        else:
            params["since"] = window["since"]
        try:
            data = ctx.client.get_json(path, params=params, check=check_page)
        except SourceRequestError:
            if not window["cursor"] or restarted:
                raise
            restarted = True
            log.warning("cms_forms: saved cursor refused; reading the window again from its start")
            window = {**window, "cursor": None}
            continue
        records = data["results"]
        past = False
        if ctx.window is not None:
            records, past = in_window(records, "submitted_at", ctx.window)
        submitted = [r["submitted_at"] for r in records if isinstance(r.get("submitted_at"), str)]
        window = {
            **window,
            "cursor": None if past else data.get("next_cursor"),
            # ISO-8601 in UTC with Z sorts as text; the provider writes them so.
            "max_submitted": later(window["max_submitted"], max(submitted, default=None)),
        }
        origin = ctx.client.describe("GET", path, params)
        if not window["cursor"]:
            new_high = later(ctx.cursor.get("high_water"), window["max_submitted"])
            yield Page(records, origin, {"high_water": new_high, "window": None})
            return
        yield Page(records, origin, {"high_water": ctx.cursor.get("high_water"), "window": window})


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset(TABLES),
)
