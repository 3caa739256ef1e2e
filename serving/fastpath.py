"""The hot route answered in plain ASGI: ``GET /v1/leads/{lead_id}/score``.

Apps read single leads far more than anything else, and on this route FastAPI's own
work (routing, solving the key dependencies, validating parameters, building a
``Response``) cost more than reading the lead from a snapshot. This middleware
answers the route's ordinary cases itself, with the same functions the route uses
(the reader's key lookup, the rate limiter, ``read_lead_detail``), so the bytes and
headers are the same; everything else goes on to FastAPI untouched:

- anything but a GET of that exact path shape, an id FastAPI would refuse, a request
  without exactly one well-formed key;
- a key that is unknown, revoked, expired or lacks ``scores:read``;
- a lead the tenant does not have (404), a store error (503): FastAPI answers them,
  with problem+json, from the same reader.

A rate-limited key also goes on (for the 429 and its ``Retry-After``); a request that
was counted here is marked so ``current_key`` does not count it twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from core.contracts.lead_scores import LEAD_SCORES
from serving.keys import looks_like_key
from serving.ratelimit import RATE_WAIT
from serving.routes.lead_scores import ID_PATTERN, read_lead_detail
from serving.routes.responses import cache_headers, held_versions
from serving.store import MAX_ID_LENGTH

ROUTE_PATH = "/v1/leads/{lead_id}/score"

_PATH = re.compile(r"^/v1/leads/([^/]+)/score$")
_CLEAN_ID = re.compile(ID_PATTERN)
_BEARER = re.compile(r"^[Bb]earer +(\S+) *$")


class _Route:
    """What ``RequestContext`` reads from ``scope["route"]`` for metrics and logs."""

    path = ROUTE_PATH


_ROUTE = _Route()


def _one_key(scope: Scope) -> str | None:
    """The request's one API key, or None when it has none, several or a malformed one."""
    found: set[str] = set()
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            found.add(value.decode("latin-1"))
        elif name == b"authorization":
            match = _BEARER.match(value.decode("latin-1"))
            if match is None:
                return None
            found.add(match.group(1))
    if len(found) != 1:
        return None
    key = found.pop()
    return key if looks_like_key(key) else None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None


_HEADERS: dict[str, tuple[tuple[bytes, bytes], ...]] = {}


def _cache_headers(version: str) -> list[tuple[bytes, bytes]]:
    """``cache_headers`` as ASGI header pairs, made once per publish version (a new list
    each call: the caller adds to it)."""
    found = _HEADERS.get(version)
    if found is None:
        if len(_HEADERS) > 10_000:
            _HEADERS.clear()
        found = _HEADERS[version] = tuple(
            (name.lower().encode(), value.encode())
            for name, value in cache_headers(LEAD_SCORES, version).items()
        )
    return list(found)


class LeadScoreFastPath:
    """See the module docstring. Sits inside ``RequestContext`` (ids, logs, metrics)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None or not await self._answer(scope, send, match.group(1)):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, lead_id: str) -> bool:
        """Answer the request and return True, or return False having sent nothing."""
        if len(lead_id) > MAX_ID_LENGTH or not _CLEAN_ID.match(lead_id):
            return False
        key = _one_key(scope)
        if key is None:
            return False
        app_state: Any = scope["app"].state
        reader = app_state.reader
        try:
            grant = await reader.find_key(key)
        except Exception:  # FastAPI asks again and answers the error as problem+json
            return False
        if grant is None or grant.expired(datetime.now(UTC)) or not grant.allows("scores:read"):
            return False
        state = scope.setdefault("state", {})
        state["key_prefix"] = grant.key_prefix
        state["tenant_id"] = grant.tenant_id
        wait = state[RATE_WAIT] = await app_state.limiter.hit(grant.key_hash)
        if wait is not None:
            return False  # FastAPI answers the 429 from RATE_WAIT, without counting again
        try:
            detail = await read_lead_detail(
                reader,
                grant.tenant_id,
                lead_id,
                held_versions(_header(scope, b"if-none-match"), LEAD_SCORES),
            )
        except Exception:  # a store error: FastAPI reads again and answers 503 or 4xx
            return False
        if detail is None:
            return False
        await reader.touch_key(grant)
        version, body = detail
        scope["route"] = _ROUTE
        headers = _cache_headers(version)
        if body is None:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
