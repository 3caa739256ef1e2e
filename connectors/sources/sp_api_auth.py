"""SP-API's access and pace: Login with Amazon tokens and a token bucket per operation.

``SpApiSession`` is one tenant's calls during a load. Its access token comes from
``POST <token URL>`` (form ``grant_type=refresh_token`` with the app's client id
and secret and the seller's refresh token), is cached per tenant and credential
until a tenth of its life (at most ``EXPIRY_MARGIN_S``) before it expires, and is
sent as ``x-amz-access-token``. A 403 ``Unauthorized`` (the service holds the
token expired) gets one new token and one retry.

Each operation waits for a token of its bucket first: the default usage plans in
Amazon's API models (see ``USAGE_PLANS``), raised or lowered to what a response's
``x-amzn-RateLimit-Limit`` says the account's plan grants.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.http_client import (
    CredentialError,
    MalformedPage,
    SourceClient,
    SourceRequestError,
)

NAME = "sp_api"
SEARCH = "searchCatalogItems"
GET_ITEM = "getCatalogItem"
OFFERS = "getItemOffers"
FEES = "getMyFeesEstimateForASIN"


# -- rate limits ---------------------------------------------------------------------


@dataclass(frozen=True)
class UsagePlan:
    rate: float
    """Requests per second, refilled continuously."""
    burst: int


USAGE_PLANS: dict[str, UsagePlan] = {
    SEARCH: UsagePlan(2.0, 2),
    GET_ITEM: UsagePlan(2.0, 2),
    OFFERS: UsagePlan(0.5, 1),
    FEES: UsagePlan(1.0, 2),
}


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; a call takes one or waits."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> float:
        """Take a token, sleeping until there is one; returns the seconds waited."""
        with self._lock:
            self._refill()
            wait = 0.0
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self._sleep(wait)
                self._refill()
                self._tokens = max(self._tokens, 1.0)
            self._tokens -= 1.0
            self.waited += wait
            return wait

    def set_rate(self, rate: float) -> None:
        """The rate the provider says applies (refill so far counted at the old one)."""
        with self._lock:
            if rate > 0 and rate != self.rate:
                self._refill()
                self.rate = rate


def header_rate(value: str | None) -> float | None:
    """The rate in an ``x-amzn-RateLimit-Limit`` header, or None when absent or bad."""
    if not value:
        return None
    try:
        rate = float(value.strip())
    except ValueError:
        return None
    return rate if rate > 0 and rate == rate and rate != float("inf") else None


# -- access tokens -------------------------------------------------------------------


@dataclass
class AccessToken:
    value: str
    expires_at: float
    """``time.time()`` after which the token is refreshed before use."""


_TOKENS: dict[tuple[str, str, str], AccessToken] = {}
_TOKENS_LOCK = threading.Lock()
EXPIRY_MARGIN_S = 60.0
"""A token is renewed this long before it expires (at most a tenth of its life), so
a request is not sent with a token about to lapse in flight."""


def _token_key(tenant_id: str, token_url: str, grant: Mapping[str, str]) -> tuple[str, str, str]:
    # The refresh token is part of the key (hashed: the cache holds no secret as a
    # key), so a tenant that stores a new credential never gets the old one's token.
    digest = hashlib.sha256(
        f"{grant.get('client_id')}\0{grant.get('refresh_token')}".encode()
    ).hexdigest()
    return tenant_id, token_url, digest


def forget_tokens() -> None:
    """Drop every cached access token (a new process starts this way)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


class SpApiSession:
    """One tenant's calls to SP-API during a load: its access token and its buckets.

    Shared by the tables of one run (through the client they share), so the
    offers step does not start with a full burst right after the catalog drained it.
    """

    def __init__(
        self,
        client: SourceClient,
        *,
        token_url: str,
        grant: Mapping[str, str],
        plans: Mapping[str, UsagePlan] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not grant:
            raise CredentialError(
                f"no Login with Amazon grant for tenant {client.tenant_id!r}: store the sp_api "
                'credential as {"client_id": ..., "client_secret": ..., "refresh_token": ...}',
                source=NAME,
                tenant_id=client.tenant_id,
            )
        # No reference to the client: sessions are kept per client in a weak map,
        # and a value that held its key would keep every client alive.
        self.tenant_id = client.tenant_id
        self.token_url = token_url
        self.grant = dict(grant)
        self.buckets = {
            op: TokenBucket(plan.rate, plan.burst, sleep=sleep)
            for op, plan in {**USAGE_PLANS, **(plans or {})}.items()
        }
        self.refreshes = 0
        self.unauthorized_retries = 0
        self._key = _token_key(self.tenant_id, token_url, grant)
        parts = urlsplit(token_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"BIZOS_LWA_TOKEN_URL must be an http(s) URL, got {token_url!r}")
        folder, _, self._token_path = parts.path.rpartition("/")
        self._lwa = SourceClient(
            source=NAME,
            tenant_id=self.tenant_id,
            base_url=f"{parts.scheme}://{parts.netloc}{folder}",
            headers={},
            secrets=[grant.get("client_secret", ""), grant.get("refresh_token", "")],
            policy=client.policy,
        )

    def close(self) -> None:
        self._lwa.close()

    # -- tokens --------------------------------------------------------------------
    def access_token(self, client: SourceClient, *, renew: bool = False) -> str:
        """The tenant's cached token, or a new one (then masked in ``client``'s messages)."""
        now = time.time()
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._key)
            if cached is not None and not renew and now < cached.expires_at:
                client.mask.add(cached.value)
                return cached.value
        token = self._refresh()
        client.mask.add(token.value)
        with _TOKENS_LOCK:
            _TOKENS[self._key] = token
        return token.value

    def _refresh(self) -> AccessToken:
        self.refreshes += 1
        form = {"grant_type": "refresh_token", **self.grant}
        try:
            data = self._lwa.request_json(
                "POST", self._token_path, form=form, check=_check_token_response
            )
        except (CredentialError, SourceRequestError) as exc:
            raise CredentialError(
                f"Login with Amazon refused the sp_api refresh token of tenant "
                f"{self.tenant_id!r} ({exc}); store a new one with "
                f"`bizos credentials set --tenant {self.tenant_id} --source {NAME}`",
                source=NAME,
                tenant_id=self.tenant_id,
            ) from None
        value = str(data["access_token"])
        self._lwa.mask.add(value)
        lifetime = float(data.get("expires_in") or 3600)
        margin = min(EXPIRY_MARGIN_S, lifetime / 10)
        return AccessToken(value, time.time() + lifetime - margin)

    # -- calls ---------------------------------------------------------------------
    def call(
        self,
        client: SourceClient,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """One SP-API operation, within its rate, with a fresh token; see the module doc."""
        bucket = self.buckets[operation]
        renew = False
        for attempt in (1, 2):
            bucket.take()
            token = self.access_token(client, renew=renew)
            try:
                data = client.request_json(
                    method,
                    path,
                    params=params,
                    body=body,
                    check=check,
                    headers={"x-amz-access-token": token},
                )
            except CredentialError as exc:
                if attempt == 1 and exc.status == 403 and "Unauthorized" in exc.detail:
                    # The service holds the token expired (clock skew, a revoked
                    # session): one new token, one more try.
                    self.unauthorized_retries += 1
                    renew = True
                    continue
                raise
            headers = client.last_headers
            rate = header_rate(headers.get("x-amzn-RateLimit-Limit") if headers else None)
            if rate is not None:
                bucket.set_rate(rate)
            return data
        raise AssertionError("unreachable")  # pragma: no cover


def _check_token_response(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise MalformedPage("the token response has no access_token")
    expires = data.get("expires_in")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise MalformedPage("the token response's expires_in is not a number")
