"""The sandbox ASGI app: every provider's routes over one generated data directory.

``/<source>/...`` serves a provider's API; ``/_sandbox/...`` is the admin API
(faults, the request log, health). The fault layer wraps the whole app as plain
ASGI, so it can cut a response short or corrupt it after the route has built it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.generator.world import SOURCES
from sandbox.server import ai_usage, cms_forms, crm, ga4, saleor, sp_api, stripe
from sandbox.server.context import Sandbox, json_response
from sandbox.server.faults import KINDS, FaultMiddleware, Receive, Scope, Send, json_bytes

MODULES = {
    "stripe": stripe,
    "ga4": ga4,
    "crm_api": crm,
    "saleor": saleor,
    "cms_forms": cms_forms,
    "ai_usage": ai_usage,
    "sp_api": sp_api,
}


def fault_error_body(source: str, status: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    module = MODULES.get(source)
    body: Any = module.error_body(status) if module else {"error": "injected fault"}
    return json_bytes(body), [(b"content-type", b"application/json")]


class SandboxApp:
    """The ASGI callable uvicorn runs; ``.sandbox`` holds the data, keys and fault book."""

    def __init__(self, sandbox: Sandbox, api: FastAPI) -> None:
        self.sandbox = sandbox
        self.api = api
        self._asgi = FaultMiddleware(api, sandbox.book, fault_error_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def create_app(data_dir: Path) -> SandboxApp:
    """The sandbox over ``data_dir`` (made by ``generate_sources``)."""
    sb = Sandbox.open(data_dir)
    api = FastAPI(
        title="bizos sandbox",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @api.get("/_sandbox/health")
    def health() -> Response:
        return json_response({"status": "ok", "tenants": sorted(sb.truth.tenants)})

    @api.get("/_sandbox/faults")
    def list_faults() -> Response:
        return json_response({"faults": sb.book.snapshot()})

    @api.post("/_sandbox/faults")
    async def add_fault(request: Request) -> Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise TypeError("expected a JSON object")
            allowed = {"source", "path", "kind", "count", "after", "retry_after", "delay"}
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(unknown)}")
            if "kind" not in spec:
                raise ValueError(f"kind is required: one of {', '.join(KINDS)}")
            source = spec.get("source")
            if source not in (None, "*", *SOURCES):
                raise ValueError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
            fault = sb.book.add(
                spec["kind"],
                source=source,
                path=spec.get("path"),
                count=int(spec.get("count", 1)),
                after=int(spec.get("after", 0)),
                retry_after=float(spec.get("retry_after", 1.0)),
                delay=float(spec.get("delay", 2.0)),
            )
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(fault.to_json(), 201)

    @api.delete("/_sandbox/faults")
    def clear_faults() -> Response:
        sb.book.clear()
        return Response(status_code=204)

    @api.get("/_sandbox/requests")
    def requests_log() -> Response:
        return json_response({"requests": [r.__dict__ for r in sb.book.records()]})

    @api.delete("/_sandbox/requests")
    def clear_requests() -> Response:
        sb.book.clear_log()
        return Response(status_code=204)

    for module in MODULES.values():
        module.register(api, sb)
    return SandboxApp(sb, api)
