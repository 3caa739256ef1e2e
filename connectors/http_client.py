"""The HTTP client every connector uses: auth, timeouts, retries, clear errors.

One ``SourceClient`` talks to one source for one tenant. It retries what a
provider documents as transient (429, 5xx, a dropped connection, a timeout)
with exponential backoff and jitter, waits at least as long as ``Retry-After``
asks, and gives up after a bounded number of attempts. A page that is not the
JSON the connector expects is retried a few times (proxies and overloaded
servers do send half pages) and then fails with the reason.

The tenant's secret is only ever put in a request header. Every message this
module writes (exceptions and log lines) goes through ``Masker`` first, so a
provider that echoes the key back in an error body cannot leak it either.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import orjson

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CREDENTIAL_STATUSES = frozenset({401, 403})
USER_AGENT = "bizos-lakehouse-connector/0.1"


# -- errors --------------------------------------------------------------------------


class ConnectorError(Exception):
    """A source could not be read. The message names tenant and source, never a secret."""

    def __init__(self, message: str, *, source: str, tenant_id: str) -> None:
        super().__init__(message)
        self.source = source
        self.tenant_id = tenant_id


class CredentialError(ConnectorError):
    """The provider refused the tenant's credential (missing, wrong, expired, revoked)."""

    status: int | None = None
    detail: str = ""
    """The provider's answer (masked), for a source that tells an expired access
    token (refresh and retry) from a refused credential."""


class SourceUnavailable(ConnectorError):
    """The provider kept failing (429/5xx/transport) past the retry budget."""


class MalformedResponse(ConnectorError):
    """The provider kept sending pages that are not the documented shape."""


class SourceRequestError(ConnectorError):
    """The provider rejected the request itself (other 4xx, GraphQL errors)."""


class MalformedPage(ValueError):
    """Raised by a page check: this response is not the shape the connector reads."""


# -- policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestPolicy:
    """Timeouts and retry budget; tests shrink the waits, production keeps these."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 8
    """Tries per request for 429, 5xx and transport errors (the first one included)."""
    malformed_attempts: int = 3
    """Tries per request when the body is not the expected JSON."""
    backoff_base: float = 0.5
    """Seconds; try n waits about ``backoff_base * 2**(n-1)``, jittered, up to ``backoff_max``."""
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    """A longer ``Retry-After`` is cut to this, so a confused server cannot park a run for days."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the exponential step fixed, half random, so clients spread out."""
        step = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return step / 2 + rng.uniform(0, step / 2)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


# -- masking -------------------------------------------------------------------------


class Masker:
    """Replaces every secret (and its URL-encoded forms) in a text with ``***``."""

    MIN_LENGTH = 4

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < self.MIN_LENGTH:
                continue
            variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
            variants.add(json.dumps(secret)[1:-1])  # as it reads inside a JSON string
        # Longest first, so a secret that contains another is masked whole.
        self._variants = sorted(variants, key=len, reverse=True)

    def add(self, secret: str) -> None:
        """Mask one more secret from now on (an access token obtained mid-run)."""
        more = Masker([secret])._variants
        self._variants = sorted({*self._variants, *more}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for variant in self._variants:
            out = out.replace(variant, "***")
        return out


# Fields of a JSON credential that identify rather than authenticate: left readable
# so errors can name the property or account they are about.
PUBLIC_CREDENTIAL_FIELDS = frozenset(
    {"property_id", "account_id", "client_email", "client_id", "project_id", "type",
     "auth_uri", "token_uri"}
)  # fmt: skip


def credential_parts(secret: str) -> list[str]:
    """The secret and, for a JSON credential, every string inside it worth masking."""
    parts = [secret]
    try:
        parsed = json.loads(secret)
    except ValueError:
        return parts
    stack: list[Any] = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in PUBLIC_CREDENTIAL_FIELDS)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 8:
            parts.append(item)
    return parts


# -- client --------------------------------------------------------------------------

PageCheck = Callable[[Any], None]
"""Raises ``MalformedPage`` when a decoded body is not the expected shape."""


class SourceClient:
    """HTTP for one (tenant, source): ``get_json`` / ``post_json`` with retries.

    ``headers`` carries the auth (built by the source module from the tenant's
    secret); ``secrets`` lists everything that must never be written anywhere.
    """

    def __init__(
        self,
        *,
        source: str,
        tenant_id: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Iterable[str],
        policy: RequestPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.tenant_id = tenant_id
        self.policy = policy or RequestPolicy()
        self.mask = Masker(secrets)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.requests = 0
        self.retries = 0
        self.last_headers: httpx.Headers | None = None
        """The headers of the last response (a provider's rate-limit headers)."""
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
            timeout=httpx.Timeout(
                self.policy.read_timeout,
                connect=self.policy.connect_timeout,
                pool=self.policy.connect_timeout,
            ),
            follow_redirects=False,
        )

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        check: PageCheck | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.request_json("GET", path, params=params, check=check, headers=headers)

    def post_json(
        self,
        path: str,
        *,
        body: Any,
        params: Mapping[str, Any] | None = None,
        check: PageCheck | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.request_json(
            "POST", path, params=params, body=body, check=check, headers=headers
        )

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        check: PageCheck | None = None,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """One logical request: retried until it yields a well-formed page or the budget ends.

        ``headers`` are added to this request only (a short-lived access token);
        ``form`` sends a form-encoded body instead of JSON (OAuth token endpoints)."""
        policy = self.policy
        what = self.describe(method, path, params)
        transient = malformed = 0
        while True:
            self.requests += 1
            try:
                response = self._http.request(
                    method,
                    path.lstrip("/"),
                    params=_clean(params),
                    json=body if form is None else None,
                    data=dict(form) if form is not None else None,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                transient += 1
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._retry_or_fail(what, reason, transient, retry_after=None)
                continue

            status = response.status_code
            self.last_headers = response.headers
            if status in CREDENTIAL_STATUSES:
                refused = CredentialError(
                    f"{self.source} refused the credential of tenant {self.tenant_id!r} "
                    f"(HTTP {status} on {what}): the stored {self.source} credential is missing, "
                    f"wrong, expired or lacks a permission; set a new one with "
                    f"`bizos credentials set --tenant {self.tenant_id} --source {self.source}`",
                    source=self.source,
                    tenant_id=self.tenant_id,
                )
                refused.status = status
                refused.detail = self._excerpt(response)
                raise refused
            if status in RETRY_STATUSES:
                transient += 1
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self._retry_or_fail(
                    what, f"HTTP {status} {self._excerpt(response)}", transient, retry_after
                )
                continue
            if status >= 400 or status < 200:
                raise SourceRequestError(
                    f"{self.source} rejected {what} for tenant {self.tenant_id!r}: "
                    f"HTTP {status} {self._excerpt(response)}",
                    source=self.source,
                    tenant_id=self.tenant_id,
                )
            try:
                data = decode_json(response)
                if check is not None:
                    check(data)
            except (ValueError, MalformedPage) as exc:
                malformed += 1
                reason = str(exc) if isinstance(exc, MalformedPage) else f"body is not JSON ({exc})"
                if malformed >= policy.malformed_attempts:
                    raise MalformedResponse(
                        self.mask(
                            f"{self.source} sent a malformed page for tenant {self.tenant_id!r} "
                            f"{malformed} times on {what}: {reason}"
                        ),
                        source=self.source,
                        tenant_id=self.tenant_id,
                    ) from None
                delay = policy.backoff(malformed, self._rng)
                log.warning(
                    self.mask(
                        f"{self.source}/{self.tenant_id}: malformed page on {what} ({reason}); "
                        f"try {malformed + 1} of {policy.malformed_attempts} in {delay:.2f}s"
                    )
                )
                self.retries += 1
                self._sleep(delay)
                continue
            return data

    def describe(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``GET /v1/charges?limit=100``: how a request is named in errors and quarantine."""
        query = "&".join(f"{k}={v}" for k, v in (_clean(params) or {}).items())
        return self.mask(f"{method} /{path.lstrip('/')}" + (f"?{query}" if query else ""))

    def _retry_or_fail(
        self, what: str, reason: str, attempt: int, retry_after: float | None
    ) -> None:
        policy = self.policy
        if attempt >= policy.max_attempts:
            raise SourceUnavailable(
                self.mask(
                    f"{self.source} failed {attempt} times for tenant {self.tenant_id!r} "
                    f"on {what}; last: {reason}"
                ),
                source=self.source,
                tenant_id=self.tenant_id,
            )
        delay = policy.backoff(attempt, self._rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.retry_after_max))
        log.warning(
            self.mask(
                f"{self.source}/{self.tenant_id}: {reason} on {what}; "
                f"try {attempt + 1} of {policy.max_attempts} in {delay:.2f}s"
            )
        )
        self.retries += 1
        self._sleep(delay)

    def _excerpt(self, response: httpx.Response, limit: int = 200) -> str:
        try:
            text = response.text
        except (UnicodeDecodeError, httpx.HTTPError):
            return ""
        text = " ".join(text.split())
        return self.mask(text[:limit] + ("…" if len(text) > limit else ""))


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19
"""19 digits in a row: an integer that may not fit in 64 bits, which orjson would
read as a float (losing digits) where the standard library keeps it exact."""


def decode_json(response: httpx.Response) -> Any:
    """The response body as JSON: orjson first (a page's decoding was a fifth of a
    load's CPU with the standard library), the standard library for what orjson
    refuses or reads otherwise (NaN, a body not in UTF-8, a run of 19 or more
    digits anywhere, even inside a string: slower, never different), so a page
    decodes to the same values either way and a body that is not JSON raises
    ValueError."""
    content = response.content
    if _LONG_DIGIT_RUN not in content.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return response.json()


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop unset parameters, so ``None`` means "not sent" rather than ``?x=None``."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}
