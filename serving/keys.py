"""Tenant-bound API keys: random, shown once, only their SHA-256 kept.

A key is ``bz_`` + 32 random bytes (urlsafe base64). It says nothing about its
tenant: the tenant comes from the stored row, so a key cannot be edited into another
tenant's. A plain SHA-256 (no salt, no slow hash) is enough because the keys carry
256 bits of randomness: there is nothing to guess, and a fast hash lets every request
look its key up by an index.

The first ``PREFIX_LENGTH`` characters are stored in clear as the key's name: logs,
``bizos keys list`` and ``bizos keys revoke`` use it; it is far too short to use.

Each key has scopes (``SCOPES``; ``admin`` implies the others), an optional expiry,
and a last-used time (written at most once a minute per key and process, so a busy
key does not turn every read into a write).

The hashes live in the ops database's ``api_keys`` table (``opsdb.tables``): on
Postgres in schema ``ops``, which the API's role reads only through
``ops.api_key_find`` (migration ops_0002); embedded in ``state/ops.sqlite``. Both
lookups refuse the keys of a disabled tenant (``opsdb.tenants``, migration ops_0006).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.settings import Settings
from core.tenancy import check_tenant_id
from opsdb.engine import OpsDatabaseUnavailable, ops_database_exists, transaction
from opsdb.key_changes import confirmed
from opsdb.tables import api_keys, tenants
from serving.store import StoreUnavailable

KEY_PREFIX = "bz_"
# "bz_" + 9 random characters (54 bits): names a key without colliding in practice.
PREFIX_LENGTH = 12
# Anything longer is not one of our keys; refuse it before hashing or querying.
MAX_KEY_LENGTH = 128
# URL-safe ASCII; one regex is a fraction of a per-character check on every request.
_KEY_CHARS = re.compile(r"[A-Za-z0-9_-]+")
SCOPES = ("scores:read", "reviews:write", "admin")
DEFAULT_SCOPES = ("scores:read",)
ADMIN = "admin"


class KeyRequestError(ValueError):
    """A key operation the caller asked for cannot be done (bad scope, ambiguous prefix)."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known about a key without the key: enough to tell keys apart and revoke."""

    key_prefix: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


@dataclass(frozen=True)
class KeyGrant:
    """An active key as a request sees it: its tenant, name and what it may do."""

    key_hash: str
    tenant_id: str
    key_prefix: str
    scopes: frozenset[str]
    expires_at: datetime | None

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(key: str | None) -> bool:
    """Shape check before any hashing or query: prefix, length, URL-safe ASCII only."""
    return (
        key is not None
        and len(key) <= MAX_KEY_LENGTH
        and key.startswith(KEY_PREFIX)
        and _KEY_CHARS.fullmatch(key) is not None
    )


def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes in ``SCOPES`` order, from text ("a b", "a,b") or a list; ValueError if unknown."""
    items = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise KeyRequestError(f"unknown scope(s) {unknown}; known: {', '.join(SCOPES)}")
    if not items:
        raise KeyRequestError("a key needs at least one scope")
    return tuple(s for s in SCOPES if s in items)


def grant_from(
    key_hash: str, tenant_id: str, key_prefix: str, scopes: str, expires_at: datetime | None
) -> KeyGrant:
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return KeyGrant(
        key_hash=key_hash,
        tenant_id=tenant_id,
        key_prefix=key_prefix,
        scopes=frozenset(scopes.split()),
        expires_at=expires_at,
    )


# -- public functions ----------------------------------------------------------------


def create_key(
    settings: Settings,
    tenant_id: str,
    *,
    scopes: str | Iterable[str] = DEFAULT_SCOPES,
    expires_in: timedelta | None = None,
) -> str:
    """Make a new key for ``tenant_id`` and return it; this is the only time it is seen."""
    check_tenant_id(tenant_id)
    chosen = parse_scopes(scopes)
    if expires_in is not None and expires_in <= timedelta(0):
        raise KeyRequestError("a key's lifetime must be positive")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with _ops(settings, write=True) as connection:
        connection.execute(
            api_keys.insert().values(
                key_hash=hash_key(key),
                tenant_id=tenant_id,
                key_prefix=key[:PREFIX_LENGTH],
                created_at=now,
                scopes=" ".join(chosen),
                expires_at=now + expires_in if expires_in is not None else None,
            )
        )
    return key


def find_grant(
    settings: Settings, key: str | None, *, include_expired: bool = False
) -> KeyGrant | None:
    """The active, unexpired key ``key``, or None; StoreUnavailable if the store is not there.

    ``include_expired`` for the API, which tells an expired key from an unknown one.
    """
    if not looks_like_key(key):
        return None
    assert key is not None
    if not ops_database_exists(settings):
        return None  # no key was ever created; do not litter an empty file
    key_hash = hash_key(key)
    k = api_keys.c
    t = tenants.c
    with _ops(settings, write=False) as connection:
        # A disabled tenant's keys fail from the commit that disabled it; a tenant with
        # no registry row (an install from before ops_0006) counts as active.
        row = connection.execute(
            sa.select(k.key_hash, k.tenant_id, k.key_prefix, k.scopes, k.expires_at)
            .select_from(api_keys.outerjoin(tenants, t.tenant_id == k.tenant_id))
            .where(
                k.key_hash == key_hash,
                k.revoked_at.is_(None),
                sa.or_(t.status.is_(None), t.status == "active"),
            )
        ).first()
    if row is None or not hmac.compare_digest(row[0], key_hash):
        return None
    found = grant_from(row[0], row[1], row[2], row[3], row[4])
    return None if found.expired(datetime.now(UTC)) and not include_expired else found


def resolve_key(settings: Settings, key: str) -> str | None:
    """The tenant bound to ``key``, or None when it is unknown, revoked or expired."""
    found = find_grant(settings, key)
    return found.tenant_id if found else None


def touch_key(settings: Settings, key_hash: str, at: datetime) -> None:
    """Record that the key with this hash was used at ``at``."""
    with _ops(settings, write=True) as connection:
        connection.execute(
            api_keys.update()
            .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
            .values(last_used_at=at)
        )


def revoke_key(settings: Settings, key: str) -> bool:
    """Revoke ``key`` at once (every API process has dropped it when this returns,
    opsdb/key_changes.py); True when an active key was revoked."""
    if not looks_like_key(key) or not ops_database_exists(settings):
        return False
    k = api_keys.c
    key_hash = hash_key(key)

    def revoke() -> bool:
        with _ops(settings, write=True) as connection:
            result = connection.execute(
                api_keys.update()
                .where(k.key_hash == key_hash, k.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return result.rowcount == 1

    return confirmed(settings, lambda revoked: [key_hash] if revoked else [], revoke)


def revoke_prefix(settings: Settings, prefix: str) -> ApiKeyInfo:
    """Revoke the one active key whose name (prefix) is ``prefix``, as ``keys list`` shows it.

    KeyRequestError when no active key has that prefix, or more than one does (then nothing
    is revoked: name the key by its full prefix or the key itself).
    """
    if not ops_database_exists(settings):
        raise KeyRequestError(f"no active key named {prefix!r}")
    k = api_keys.c

    def revoke() -> tuple[str, str]:
        with _ops(settings, write=True) as connection:
            active = connection.execute(
                sa.select(k.key_hash, k.key_prefix, k.tenant_id).where(
                    k.key_prefix == prefix, k.revoked_at.is_(None)
                )
            ).all()
            if len(active) != 1:
                found = "no active key" if not active else f"{len(active)} active keys"
                raise KeyRequestError(f"{found} named {prefix!r}: nothing revoked")
            connection.execute(
                api_keys.update()
                .where(k.key_hash == active[0][0], k.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return active[0][0], active[0][2]

    _, tenant_id = confirmed(settings, lambda revoked: [revoked[0]], revoke)
    return next(i for i in list_keys(settings, tenant_id) if i.key_prefix == prefix)


def list_keys(settings: Settings, tenant_id: str | None = None) -> list[ApiKeyInfo]:
    """Keys by prefix (never the key), newest first; all tenants when ``tenant_id`` is None."""
    if not ops_database_exists(settings):
        return []
    k = api_keys.c
    query = sa.select(
        k.key_prefix,
        k.tenant_id,
        k.created_at,
        k.revoked_at,
        k.scopes,
        k.expires_at,
        k.last_used_at,
    ).order_by(k.created_at.desc())
    if tenant_id is not None:
        query = query.where(k.tenant_id == tenant_id)
    with _ops(settings, write=False) as connection:
        rows = connection.execute(query).tuples().all()
    return [ApiKeyInfo(p, t, c, r, tuple(s.split()), e, u) for (p, t, c, r, s, e, u) in rows]


@contextmanager
def _ops(settings: Settings, *, write: bool) -> Iterator[sa.Connection]:
    """An ops transaction; an unreachable or broken key store is ``StoreUnavailable`` (503)."""
    try:
        with transaction(settings, write=write) as connection:
            yield connection
    except OpsDatabaseUnavailable as exc:
        raise StoreUnavailable(f"the API key store: {exc}") from exc
    except sa.exc.DBAPIError as exc:  # dropped mid-query, or a table missing
        raise StoreUnavailable(f"the API key store failed: {type(exc.orig).__name__}") from exc
