"""Typed FastAPI dependencies: the reader, and the caller's key with its tenant and scopes.

The tenant never comes from the URL or the body: only from the stored row of the key
the request carries, so a caller can only ever name its own tenant. The key itself is
never logged or echoed; logs name it by its prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.keys import KeyGrant, looks_like_key
from serving.ratelimit import RATE_WAIT, RateLimiter
from serving.readers import ApiReader

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="Tenant API key (`bz_...`). The key decides the tenant.",
)
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key sent as `Authorization: Bearer bz_...`.",
)
_CHALLENGE = 'Bearer realm="bizos"'


def get_reader(request: Request) -> ApiReader:
    reader: ApiReader = request.app.state.reader
    return reader


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


ReaderDep = Annotated[ApiReader, Depends(get_reader)]


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = _CHALLENGE + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def presented_key(
    request: Request,
    api_key: str | None,
    credentials: HTTPAuthorizationCredentials | None,
) -> str | None:
    """The one key the request carries; 400 when it carries two different ones.

    A request naming two keys is ambiguous about its tenant: refused, never served
    as either.
    """
    presented = set(request.headers.getlist("x-api-key"))
    if credentials is not None:
        presented.add(credentials.credentials)
    elif api_key:
        presented.add(api_key)
    if len(presented) > 1:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "the request carries more than one API key (X-API-Key and/or Bearer): send one",
        )
    return next(iter(presented), None)


async def current_key(
    request: Request,
    reader: ReaderDep,
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    api_key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> KeyGrant:
    """The active key of the request: 401 without one, 429 past its rate limit."""
    key = presented_key(request, api_key, credentials)
    if not key:
        raise _unauthorized("missing API key: send X-API-Key or Authorization: Bearer")
    if not looks_like_key(key):
        raise _unauthorized("invalid API key", "invalid_token")
    grant = await reader.find_key(key)
    if grant is None:
        raise _unauthorized("invalid API key", "invalid_token")
    request.state.key_prefix = grant.key_prefix
    if grant.expired(datetime.now(UTC)):
        raise _unauthorized("API key expired", "invalid_token")
    request.state.tenant_id = grant.tenant_id
    # Counted already when the fast path (serving/fastpath.py) handed the request on.
    counted = request.scope.get("state", {})
    wait = counted[RATE_WAIT] if RATE_WAIT in counted else await limiter.hit(grant.key_hash)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "rate limit of this API key exceeded",
            {"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    await reader.touch_key(grant)
    return grant


def require_scope(scope: str) -> object:
    """A dependency giving the request's key if it holds ``scope`` (or admin); else 403."""

    async def check(grant: Annotated[KeyGrant, Depends(current_key)]) -> KeyGrant:
        if not grant.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks scope {scope}")
        return grant

    return Depends(check)


ScoresReader = Annotated[KeyGrant, require_scope("scores:read")]
