"""Shared pieces of the versioned data routes: documented errors, ETags, JSON bodies.

Generic over the serving contracts: a route for a new mart picks its contract and an
encoder (its ``...Public`` model) and reuses the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from core.contracts.table import TableContract
from serving.readers import ServedRow
from serving.schemas import ProblemPublic


def _error(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


DATA_ERRORS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` ETag is still current"},
    400: _error("Malformed request (two keys, a cursor that is not ours, ...)"),
    401: _error("Missing, invalid, revoked or expired API key"),
    403: _error("The key lacks the scope this route needs"),
    422: _error("A parameter failed validation; `errors` says which"),
    429: _error("Rate limit of the key exceeded; see Retry-After"),
    503: _error("Serving store unavailable, slow, or empty; see Retry-After"),
}


def etag(contract: TableContract, version: str) -> str:
    """The ETag of every response built from one publish of one tenant's table.

    Publish versions are unique across tenants, so a tenant's ETag says nothing of
    another's data.
    """
    return f'"{contract.name}.{version}"'


def wanted_versions(request: Request, contract: TableContract) -> frozenset[str]:
    """The publish versions the client holds, from ``If-None-Match`` (ours only)."""
    return held_versions(request.headers.get("if-none-match"), contract)


def held_versions(header: str | None, contract: TableContract) -> frozenset[str]:
    """The publish versions named by an ``If-None-Match`` header value (ours only)."""
    if not header:
        return frozenset()
    prefix = f'"{contract.name}.'
    versions = set()
    for tag in header.split(",")[:16]:
        tag = tag.strip().removeprefix("W/")
        if tag.startswith(prefix) and tag.endswith('"'):
            versions.add(tag[len(prefix) : -1])
    return frozenset(versions)


def cache_headers(contract: TableContract, version: str) -> dict[str, str]:
    return {
        "ETag": etag(contract, version),
        # Per key: a shared cache must not serve one tenant's answer to another.
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization, X-API-Key",
    }


def not_modified(contract: TableContract, version: str) -> Response:
    return Response(status_code=304, headers=cache_headers(contract, version))


def json_body(contract: TableContract, version: str, body: bytes) -> Response:
    return Response(body, media_type="application/json", headers=cache_headers(contract, version))


def page_body(items: Sequence[ServedRow], next_cursor: str | None) -> bytes:
    """``{"items": [...], "next_cursor": ...}`` from rows already encoded."""
    cursor = b"null" if next_cursor is None else b'"' + next_cursor.encode("ascii") + b'"'
    return b'{"items":[' + b",".join(r.body for r in items) + b'],"next_cursor":' + cursor + b"}"


def encoder(model: type[BaseModel]) -> Any:
    """Row -> JSON bytes through ``model.from_row``: the response schema, validated once."""

    def encode(row: dict[str, Any]) -> bytes:
        return model.from_row(row).model_dump_json().encode()  # type: ignore[attr-defined]

    return encode
