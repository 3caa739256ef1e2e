"""A fast stand-in for the sandbox's list endpoints: pages from bytes rendered in memory.

The ingest benchmark measures the client's CPU per record, so the server must
never be what a contender waits for. The sandbox (FastAPI, DuckDB lookups per
page) serves about 6,500 records a second on this machine, which is the pace
both contenders ran at in the first ingest run. This server loads one generated
table (``sandbox.generator`` output: ``id``, time column, ``seq``, ``payload``)
once, keeps every record's JSON as bytes, and answers each request with a join
of the page's slice in a plain asyncio protocol (HTTP/1.1, keep-alive), in its
own process.

It speaks the two shapes the sandbox serves, with the parameters the
contenders send:

- Stripe, ``GET /stripe/v1/<table>``: newest first, ``limit``,
  ``starting_after``, ``created[gte]`` / ``created[lt]``;
  ``{"object": "list", "data", "has_more", "url"}``.
- CRM API, ``GET /crm_api/api/v1/<table>``: ``updated_at`` then ``id`` order,
  ``page``, ``per_page``, ``updated_since`` (inclusive);
  ``{"data", "meta": {"page", "per_page", "total", "total_pages"}}``.

A request without the tenant's ``Authorization: Bearer <secret>`` gets 401, an
unknown path 404, as from the sandbox.

Usage (the benchmark starts it): ``python bench/page_server.py DATA_DIR TENANT PORT``
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote

SOURCES = ("stripe", "crm_api")


@dataclass
class Table:
    """One table's records in ascending ``seq`` order (the generator's order)."""

    ids: list[str]
    times: list[int]
    payloads: list[bytes]
    position: dict[str, int]


def load_table(path: Path) -> Table:
    import pyarrow.parquet as pq

    table = pq.read_table(path).sort_by("seq")
    time_column = "updated" if "updated" in table.column_names else "created"
    ids = table.column("id").to_pylist()
    payloads = [p.encode() for p in table.column("payload").to_pylist()]
    return Table(
        ids=ids,
        times=table.column(time_column).to_pylist(),
        payloads=payloads,
        position={row_id: i for i, row_id in enumerate(ids)},
    )


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def stripe_page(table: Table, resource: str, query: dict[str, str]) -> tuple[int, bytes]:
    """Newest first: ascending rows ``[lo, hi)`` within the created bounds, read from
    the top, below ``starting_after``."""
    limit = int(query.get("limit", "10"))
    lo, hi = 0, len(table.ids)
    if "created[gte]" in query:
        lo = bisect.bisect_left(table.times, int(query["created[gte]"]))
    if "created[lt]" in query:
        hi = bisect.bisect_left(table.times, int(query["created[lt]"]))
    after = query.get("starting_after")
    if after:
        at = table.position.get(after)
        if at is None:
            return 400, b'{"error":{"message":"No such object","type":"invalid_request_error"}}'
        hi = min(hi, at)
    start = max(lo, hi - limit)
    rows = table.payloads[start:hi] if hi > lo else []
    rows.reverse()
    has_more = start > lo
    body = (
        b'{"object":"list","data":['
        + b",".join(rows)
        + b'],"has_more":'
        + (b"true" if has_more else b"false")
        + b',"url":"/v1/'
        + resource.encode()
        + b'"}'
    )
    return 200, body


def crm_page(table: Table, query: dict[str, str]) -> tuple[int, bytes]:
    page = int(query.get("page", "1"))
    per_page = int(query.get("per_page", "25"))
    start = 0
    if query.get("updated_since"):
        start = bisect.bisect_left(table.times, _epoch(query["updated_since"]))
    total = len(table.ids) - start
    lo = start + (page - 1) * per_page
    rows = table.payloads[lo : lo + per_page]
    pages = -(-total // per_page)
    meta = f'"meta":{{"page":{page},"per_page":{per_page},"total":{total},"total_pages":{pages}}}'
    return 200, b'{"data":[' + b",".join(rows) + b"]," + meta.encode() + b"}"


class PageServer:
    def __init__(self, data_dir: Path, tenant: str) -> None:
        credentials = json.loads((data_dir / "credentials.json").read_text())[tenant]
        self.auth = {s: f"Bearer {credentials[s]['secret']}".encode() for s in SOURCES}
        self.data_dir = data_dir / tenant
        self.tables: dict[tuple[str, str], Table] = {}

    def preload(self, names: list[str]) -> None:
        for name in names:
            source, table = name.split(".")
            self.tables[(source, table)] = load_table(self.data_dir / source / f"{table}.parquet")

    def answer(self, target: str, headers: dict[bytes, bytes]) -> tuple[int, bytes]:
        path, _, query_text = target.partition("?")
        query = dict(parse_qsl(query_text))
        parts = unquote(path).strip("/").split("/")
        if parts[:2] == ["stripe", "v1"] and len(parts) == 3:
            source, table = "stripe", parts[2]
        elif parts[:4] == ["crm_api", "api", "v1"] + parts[3:4] and len(parts) == 4:
            source, table = "crm_api", parts[3]
        elif parts == ["_health"]:
            return 200, b"{}"
        else:
            return 404, b'{"error":"not found"}'
        if headers.get(b"authorization") != self.auth[source]:
            return 401, b'{"error":"unauthorized"}'
        found = self.tables.get((source, table))
        if found is None:
            return 404, b'{"error":"no such table"}'
        return stripe_page(found, table, query) if source == "stripe" else crm_page(found, query)


REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found"}


class Http(asyncio.Protocol):
    """HTTP/1.1 GETs with keep-alive; no request bodies (the contenders send none)."""

    def __init__(self, server: PageServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.split(b"\r\n")
            method, target, _version = lines[0].split(b" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if method != b"GET":
                status, body = 404, b'{"error":"GET only"}'
            else:
                try:
                    status, body = self.server.answer(target.decode(), headers)
                except (ValueError, KeyError) as exc:
                    status, body = 400, json.dumps({"error": str(exc)}).encode()
            close = headers.get(b"connection", b"").lower() == b"close"
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n%s\r\n"
                % (status, REASONS[status], len(body), b"Connection: close\r\n" if close else b"")
                + body
            )
            if close:
                self.transport.close()
                return


def main() -> None:
    data_dir, tenant, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    tables = sys.argv[4].split(",") if len(sys.argv) > 4 else ["stripe.charges", "crm_api.leads"]
    server = PageServer(data_dir, tenant)
    server.preload(tables)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(lambda: Http(server), "127.0.0.1", port, backlog=64)
        print("ready", flush=True)
        async with listener:
            await listener.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
