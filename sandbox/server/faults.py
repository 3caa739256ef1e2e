"""Faults injected on request, and the log of every request the sandbox served.

A fault matches requests by source and (optionally) path prefix. It lets the
first ``after`` matching requests through, then hits the next ``count`` of them
(``count`` 0: every one until cleared). Kinds:

- ``429``, ``500``, ``503``: that status with the provider's error body;
  ``Retry-After: <retry_after>`` on 429 and 503.
- ``slow``: waits ``delay`` seconds, then answers normally.
- ``drop``: sends the status line, headers (with the full Content-Length) and
  half the body, then closes the TCP connection.
- ``malformed``: 200 with the body cut in half: not valid JSON.

Every fault that matches a request counts it (so ``after`` is "after the first
K requests to this path since the fault was added"); at most one fault fires
per request, the earliest added.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("429", "500", "503", "slow", "drop", "malformed")
LOG_SIZE = 200_000
ADMIN_PREFIX = "/_sandbox"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Fault:
    id: int
    kind: str
    source: str | None = None
    path: str | None = None
    count: int = 1
    after: int = 0
    retry_after: float = 1.0
    delay: float = 2.0
    seen: int = 0
    fired: int = 0

    def matches(self, source: str, path: str) -> bool:
        if self.source not in (None, "*", source):
            return False
        return self.path is None or path.startswith(self.path)

    @property
    def exhausted(self) -> bool:
        return self.count > 0 and self.fired >= self.count

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequestRecord:
    at: float
    method: str
    source: str
    path: str
    query: str
    status: int | None
    fault: str | None


@dataclass
class FaultBook:
    """The faults in force and the request log, shared by the server and its handle."""

    faults: list[Fault] = field(default_factory=list)
    # Bounded, so a sandbox left serving for days does not grow without end.
    log: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1

    def add(
        self,
        kind: str | int,
        *,
        source: str | None = None,
        path: str | None = None,
        count: int = 1,
        after: int = 0,
        retry_after: float = 1.0,
        delay: float = 2.0,
    ) -> Fault:
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if count < 0 or after < 0 or retry_after < 0 or delay < 0:
            raise ValueError("count, after, retry_after and delay must not be negative")
        if source and path and path.startswith(f"/{source}/"):
            path = path[len(source) + 1 :]
        with self._lock:
            fault = Fault(
                id=self._next_id,
                kind=kind,
                source=source or None,
                path=path or None,
                count=int(count),
                after=int(after),
                retry_after=float(retry_after),
                delay=float(delay),
            )
            self._next_id += 1
            self.faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, source: str, path: str) -> Fault | None:
        """The fault that hits this request, if any (counting it against every match)."""
        with self._lock:
            hit = None
            for fault in self.faults:
                if fault.exhausted or not fault.matches(source, path):
                    continue
                fault.seen += 1
                if hit is None and fault.seen > fault.after:
                    fault.fired += 1
                    hit = fault
            return hit

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.log.append(rec)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.log)

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self.faults]


ErrorBody = Callable[[str, int], tuple[bytes, list[tuple[bytes, bytes]]]]


class _DropFilter(logging.Filter):
    """uvicorn logs an error when a response is cut short: a dropped page is meant to be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropFilter())


class FaultMiddleware:
    """Pure ASGI wrapper: logs every request and applies the faults in the book."""

    def __init__(self, app: ASGIApp, book: FaultBook, error_body: ErrorBody) -> None:
        self.app = app
        self.book = book
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        full = scope["path"]
        parts = full.split("/", 2)
        source = parts[1] if len(parts) > 1 else ""
        path = "/" + parts[2] if len(parts) > 2 else "/"
        query = scope.get("query_string", b"").decode("latin-1")
        fault = self.book.take(source, path)
        status_seen: list[int] = []

        def log(status: int | None) -> None:
            self.book.record(
                RequestRecord(
                    at=time.time(),
                    method=scope["method"],
                    source=source,
                    path=path,
                    query=query,
                    status=status,
                    fault=fault.kind if fault else None,
                )
            )

        if fault is None or fault.kind == "slow":
            if fault is not None:
                await asyncio.sleep(fault.delay)

            async def logging_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_seen.append(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, logging_send)
            finally:
                log(status_seen[0] if status_seen else None)
            return

        if fault.kind in ("429", "500", "503"):
            status = int(fault.kind)
            body, headers = self.error_body(source, status)
            if status in (429, 503):
                ra = fault.retry_after
                headers.append(
                    (b"retry-after", (str(int(ra)) if ra == int(ra) else str(ra)).encode())
                )
            await _send_whole(send, status, headers, body)
            log(status)
            return

        # drop and malformed need the real page first.
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if fault.kind == "malformed":
            cut = body[: max(1, len(body) // 2)]
            await _send_whole(send, 200, headers, cut)
            log(200)
            return
        # drop: promise the whole body, deliver half, hang up.
        headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": start.get("status", 200), "headers": headers}
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        log(start.get("status"))
        # Returning now, with the response incomplete, makes the server close the connection.


async def _send_whole(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
