"""Per-tenant model usage and cost from the AI service: tokens, model, feature, cost.

``GET /v1/usage?start_time&end_time&page_token&page_size`` returns
``{"data", "next_page_token"}`` in ``timestamp`` then ``id`` order, ``start_time``
inclusive and ``end_time`` exclusive. A window is ``[high-water, now)``, its end
fixed when it opens (so a resumed run pages the same set); the saved cursor is
the provider's ``next_page_token`` with those bounds. When the window is read
to its end the high-water mark becomes its end. Records stamped late (after
the window closed, with an earlier timestamp) would be missed, so each window
starts ``LOOKBACK_S`` before the mark and the merge absorbs the overlap.

A windowed load sends its own bounds as ``start_time`` / ``end_time``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage, SourceRequestError
from connectors.landing import TableSpec
from connectors.sources._common import require_list, require_objects, secret_value

log = logging.getLogger(__name__)

NAME = "ai_usage"
PAGE_SIZE = 1000  # the API's maximum
LOOKBACK_S = 3600

TABLES: dict[str, TableSpec] = {
    "usage": TableSpec(
        source=NAME,
        name="usage",
        date_field="timestamp",
        date_format="iso",
        primary_key=("id",),
        required=("model",),
        columns={
            "id": pa.string(),
            "timestamp": pa.string(),
            "model": pa.string(),
            "input_tokens": pa.int64(),
            "output_tokens": pa.int64(),
            "cost_usd": pa.string(),  # a decimal string, kept exact
        },
    )
}


def credential(secret: str) -> Credential:
    key = secret_value(secret, "api_key", "token")
    return Credential(headers={"Authorization": f"Bearer {key}"}, secrets=[key])


def check_page(data: Any) -> None:
    require_objects(require_list(data, "data", where=" (usage)"), "data")
    token = data.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise MalformedPage("'next_page_token' is neither a string nor null")


def read(ctx: ReadContext) -> Iterator[Page]:
    high_water = None if ctx.full_refresh else ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        # The API takes whole seconds: round both bounds up to stay within [start, end).
        start_s, end_s = (math.ceil(t.timestamp()) for t in ctx.window)
        window = {"start": start_s, "end": end_s, "page_token": None}
    elif window is None or (ctx.full_refresh and window.get("start") is not None):
        start = None if high_water is None else int(high_water) - LOOKBACK_S
        window = {"start": start, "end": int(ctx.now.timestamp()), "page_token": None}
    path = "v1/usage"
    restarted = False
    while True:
        params = {
            "start_time": window["start"],
            "end_time": window["end"],
            "page_size": min(ctx.page_size, PAGE_SIZE),
            "page_token": window["page_token"],
        }
        try:
            data = ctx.client.get_json(path, params=params, check=check_page)
        except SourceRequestError:
            if not window["page_token"] or restarted:
                raise
            restarted = True
            log.warning("ai_usage: saved page token refused; reading the window again")
            window = {**window, "page_token": None}
            continue
        records = data["data"]
        origin = ctx.client.describe("GET", path, params)
        token = data.get("next_page_token")
        if not token:
            yield Page(records, origin, {"high_water": window["end"], "window": None})
            return
        window = {**window, "page_token": token}
        yield Page(records, origin, {"high_water": ctx.cursor.get("high_water"), "window": window})


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset(TABLES),
)
