"""Request ids, structured JSON logs and Prometheus metrics of the serving API.

``RequestContext`` is a plain ASGI middleware (no thread pool, no body buffering):
it gives each request an id (the client's ``X-Request-ID`` if it is a sane token,
else a new one), returns it as a header, times the request, counts it in
``Metrics`` and writes one access line as JSON. The line names the key by its
prefix only; the path is logged without its query string, and ``JsonFormatter``
blanks anything shaped like a key in any message, so no key reaches the logs even
when a client puts one somewhere odd.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("bizos.api.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_KEY_SHAPE = re.compile(r"bz_[A-Za-z0-9_-]{10,}")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def redact(text: str) -> str:
    """``text`` with anything shaped like an API key cut to its prefix."""
    return _KEY_SHAPE.sub(lambda m: m.group(0)[:12] + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the access fields."""

    FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms", "key", "tenant")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=True, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for ``bizos serve``: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["json"], "level": level, "propagate": False},
            # Ours is the access log: it leaves out query strings, uvicorn's does not.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


class Metrics:
    """Request counts and latencies by route and status, in Prometheus text format.

    Per process: with several uvicorn workers each answers for itself, which is what
    a Prometheus scrape of each worker (or a sum over them) expects.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._sum: dict[str, float] = defaultdict(float)
        self.extra: dict[str, float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._count[(method, route, status)] += 1
            buckets = self._buckets[route]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
                    break
            else:
                buckets[-1] += 1
            self._sum[route] += seconds

    def render(self) -> str:
        lines = [
            "# HELP bizos_api_requests_total Requests answered, by method, route and status.",
            "# TYPE bizos_api_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self._count.items()):
                lines.append(
                    f'bizos_api_requests_total{{method="{method}",route="{_label(route)}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP bizos_api_request_duration_seconds Time to answer, by route.",
                "# TYPE bizos_api_request_duration_seconds histogram",
            ]
            for route, buckets in sorted(self._buckets.items()):
                label = _label(route)
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), buckets, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        f'bizos_api_request_duration_seconds_bucket{{route="{label}",le="{le}"}}'
                        f" {running}"
                    )
                lines.append(
                    f'bizos_api_request_duration_seconds_sum{{route="{label}"}} {self._sum[route]}'
                )
                lines.append(
                    f'bizos_api_request_duration_seconds_count{{route="{label}"}} {running}'
                )
            for name, value in sorted(self.extra.items()):
                lines.append(f"# TYPE {name} gauge")
                lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestContext:
    """Request id, access log line and metrics for every HTTP request; see the module."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope.get("path", "").encode("utf-8", "replace").decode(),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "key": state.get("key_prefix"),
                        "tenant": state.get("tenant_id"),
                    },
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
