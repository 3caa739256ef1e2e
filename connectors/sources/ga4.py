"""Google Analytics 4: traffic by day, page, source / medium and client / user id.

One ``runReport`` (Data API v1beta) at the finest grain the property allows:
dimensions ``date, pagePath, sessionSourceMedium, clientId, userId``, metrics
``sessions, totalUsers, screenPageViews, conversions``. At that grain a row is
one client's traffic on one page from one source on one day; every coarser
report (sessions by page, users by source) is a ``GROUP BY`` in dbt, and
``userId`` ties visits to CRM leads. A row's key is
``date|pagePath|sessionSourceMedium|clientId``, kept as ``id``.

Paging is ``limit``/``offset`` over rows ordered by every dimension, so a page
is stable while the window is read. The cursor is dates: a window covers
``[high-water - LOOKBACK_DAYS, today]`` (GA4 keeps revising the last days'
numbers), its bounds fixed when it opens and its offset saved after each page;
when it is read to its end the high-water mark becomes its last day.

A windowed load ``[start, end)`` asks for the days whose midnight falls in it:
``dateRanges`` from the first such day to the last, both inclusive.

Credential: an OAuth access token for the Data API, plain or as JSON
``{"access_token": ..., "property_id": ...}``; the property id may also come
from the connector options.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import CredentialError, MalformedPage
from connectors.landing import TableSpec
from connectors.sources._common import require_objects, secret_options, secret_value

NAME = "ga4"
PAGE_SIZE = 10_000
FIRST_DAY = date(2015, 8, 14)  # the first day GA4 reports on
LOOKBACK_DAYS = 3
DIMENSIONS = ("date", "pagePath", "sessionSourceMedium", "clientId", "userId")
KEY = ("date", "pagePath", "sessionSourceMedium", "clientId")
METRICS = ("sessions", "totalUsers", "screenPageViews", "conversions")
INTEGER_TYPES = {"TYPE_INTEGER"}

TABLES: dict[str, TableSpec] = {
    "report_rows": TableSpec(
        source=NAME,
        name="report_rows",
        date_field="date",
        date_format="yyyymmdd",
        primary_key=("id",),
        required=KEY,
        columns={
            "id": pa.string(),
            **{d: pa.string() for d in DIMENSIONS},
            **{m: pa.int64() for m in METRICS},
        },
    )
}


def credential(secret: str) -> Credential:
    token = secret_value(secret, "access_token", "token")
    return Credential(
        headers={"Authorization": f"Bearer {token}"},
        secrets=[token],
        options=secret_options(secret, "property_id"),
    )


def check_report(data: Any) -> None:
    if not isinstance(data, dict):
        raise MalformedPage(f"expected a JSON object (runReport), got {type(data).__name__}")
    headers = data.get("dimensionHeaders")
    metrics = data.get("metricHeaders")
    if not isinstance(headers, list) or not isinstance(metrics, list):
        raise MalformedPage("'dimensionHeaders' or 'metricHeaders' is missing (runReport)")
    rows = data.get("rows", [])
    if not isinstance(rows, list):
        raise MalformedPage("'rows' is not a list (runReport)")
    require_objects(rows, "rows")
    for n, row in enumerate(rows):
        dims, mets = row.get("dimensionValues"), row.get("metricValues")
        if not (isinstance(dims, list) and len(dims) == len(headers)):
            raise MalformedPage(f"row {n}: dimensionValues do not match the headers")
        if not (isinstance(mets, list) and len(mets) == len(metrics)):
            raise MalformedPage(f"row {n}: metricValues do not match the headers")
    if not isinstance(data.get("rowCount", 0), int):
        raise MalformedPage("'rowCount' is not an integer (runReport)")


def _number(value: Any, kind: str) -> int | float | None:
    if value is None:
        return None
    try:
        return int(value) if kind in INTEGER_TYPES else float(value)
    except (TypeError, ValueError):
        return None


def to_records(data: dict[str, Any], property_id: str) -> list[dict[str, Any]]:
    """runReport rows as flat records: one field per dimension and metric, typed."""
    dims = [h.get("name") for h in data["dimensionHeaders"]]
    mets = [(h.get("name"), h.get("type", "TYPE_FLOAT")) for h in data["metricHeaders"]]
    out = []
    for row in data.get("rows", []):
        record: dict[str, Any] = {}
        for name, value in zip(dims, row["dimensionValues"], strict=True):
            record[name] = value.get("value") if isinstance(value, dict) else None
        for (name, kind), value in zip(mets, row["metricValues"], strict=True):
            record[name] = _number(value.get("value") if isinstance(value, dict) else None, kind)
        key = [record.get(k) for k in KEY]
        record = {
            "id": "|".join(str(k) for k in key) if all(k is not None for k in key) else None,
            **record,
            "property_id": property_id,
        }
        out.append(record)
    return out


def window_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The first and last day (inclusive, as ``dateRanges`` wants) whose midnight (UTC)
    is in ``[start, end)``; None when there is no such day."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.date()
    if start != datetime.combine(first, time(), UTC):
        first += timedelta(days=1)
    last = (end - timedelta(microseconds=1)).date()
    return (first, last) if first <= last else None


def read(ctx: ReadContext) -> Iterator[Page]:
    property_id = str(ctx.options.get("property_id") or "")
    if not property_id:
        raise CredentialError(
            f"no GA4 property id for tenant {ctx.client.tenant_id!r}: store the ga4 credential "
            'as {"access_token": ..., "property_id": ...} or pass options={"property_id": ...}',
            source=NAME,
            tenant_id=ctx.client.tenant_id,
        )
    high_water = None if ctx.full_refresh else ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        days = window_days(*ctx.window)
        if days is None:
            return
        window = {"start": days[0].isoformat(), "end": days[1].isoformat(), "offset": 0}
    elif window is None or (ctx.full_refresh and window.get("start") != FIRST_DAY.isoformat()):
        start = FIRST_DAY
        if high_water is not None:
            start = max(FIRST_DAY, date.fromisoformat(high_water) - timedelta(days=LOOKBACK_DAYS))
        window = {"start": start.isoformat(), "end": ctx.now.date().isoformat(), "offset": 0}
    path = f"v1beta/properties/{property_id}:runReport"
    limit = min(ctx.page_size, PAGE_SIZE)
    while True:
        body = {
            "dateRanges": [{"startDate": window["start"], "endDate": window["end"]}],
            "dimensions": [{"name": d} for d in DIMENSIONS],
            "metrics": [{"name": m} for m in METRICS],
            "orderBys": [{"dimension": {"dimensionName": d}} for d in DIMENSIONS],
            "limit": limit,
            "offset": window["offset"],
            "keepEmptyRows": False,
        }
        data = ctx.client.post_json(path, body=body, check=check_report)
        records = to_records(data, property_id)
        origin = ctx.client.describe(
            "POST",
            path,
            {
                "startDate": window["start"],
                "endDate": window["end"],
                "offset": window["offset"],
                "limit": limit,
            },  # fmt: skip
        )
        offset = window["offset"] + len(records)
        if not records or offset >= int(data.get("rowCount", 0)):
            yield Page(records, origin, {"high_water": window["end"], "window": None})
            return
        window = {**window, "offset": offset}
        yield Page(records, origin, {"high_water": ctx.cursor.get("high_water"), "window": window})


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    event_tables=frozenset(TABLES),
)
