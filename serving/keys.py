"""Tenant-bound API keys: the key is shown once, only its SHA-256 is kept.

A key is ``bz_`` + 32 random bytes (urlsafe base64). It says nothing about its
tenant: the tenant comes from the stored row, so a key cannot be edited into
another tenant's. A plain SHA-256 (no salt, no slow hash) is enough because the
keys carry 256 bits of randomness: there is nothing to guess, and a fast hash lets
every request look its key up by an index.

The hashes live in the ops database's ``api_keys`` table (``opsdb.tables``, created
by the ``ops`` migrations): ``ops.api_keys`` on Postgres, a schema the API's
``bizos_reader`` role is never granted, or ``state/ops.sqlite`` embedded; the same
code runs on both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from core.settings import Settings
from core.tenancy import check_tenant_id
from opsdb.engine import OpsDatabaseUnavailable, ops_database_exists, transaction
from opsdb.tables import api_keys
from serving.store import StoreUnavailable

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

KEY_PREFIX = "bz_"
PREFIX_LENGTH = 8
# Anything longer is not one of our keys; refuse it before hashing or querying.
MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known about a key without the key: enough to tell keys apart and revoke."""

    key_prefix: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class _StoredKey:
    key_hash: str
    tenant_id: str


class ApiKeyStore(Protocol):
    """Where key hashes live; one implementation per target."""

    def insert(
        self, *, key_hash: str, tenant_id: str, key_prefix: str, created_at: datetime
    ) -> None: ...

    def find(self, *, key_hash: str) -> _StoredKey | None:
        """The active (not revoked) key with this hash."""
        ...

    def revoke(self, *, key_hash: str, revoked_at: datetime) -> bool: ...

    def list_keys(self, *, tenant_id: str | None) -> list[ApiKeyInfo]: ...


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _looks_like_key(key: str | None) -> bool:
    return key is not None and len(key) <= MAX_KEY_LENGTH and key.startswith(KEY_PREFIX)


def lookup_tenant(store: ApiKeyStore, key: str | None) -> str | None:
    """The tenant of an active key, or None; the one check both the API and CLI use."""
    if key is None or not _looks_like_key(key):
        return None
    key_hash = hash_key(key)
    found = store.find(key_hash=key_hash)
    if found is None:
        return None
    # The row was found by its hash, so this holds; compare in constant time anyway
    # so no future change to the lookup turns this into a timing oracle.
    if not hmac.compare_digest(found.key_hash, key_hash):
        return None
    return found.tenant_id


# -- public functions ----------------------------------------------------------------


def create_key(settings: Settings, tenant_id: str) -> str:
    """Make a new key for ``tenant_id`` and return it; this is the only time it is seen."""
    check_tenant_id(tenant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key_store(settings).insert(
        key_hash=hash_key(key),
        tenant_id=tenant_id,
        key_prefix=key[:PREFIX_LENGTH],
        created_at=datetime.now(UTC),
    )
    return key


def resolve_key(settings: Settings, key: str) -> str | None:
    """The tenant bound to ``key``, or None when it is unknown or revoked."""
    return lookup_tenant(api_key_store(settings), key)


def revoke_key(settings: Settings, key: str) -> bool:
    """Revoke ``key`` at once; True when an active key was revoked."""
    if not _looks_like_key(key):
        return False
    return api_key_store(settings).revoke(key_hash=hash_key(key), revoked_at=datetime.now(UTC))


def list_keys(settings: Settings, tenant_id: str | None = None) -> list[ApiKeyInfo]:
    """Keys by prefix (never the key), newest first; all tenants when ``tenant_id`` is None."""
    return api_key_store(settings).list_keys(tenant_id=tenant_id)


def api_key_store(settings: Settings, *, pool: ConnectionPool | None = None) -> ApiKeyStore:
    """The key store for ``settings``; the same code on SQLite and Postgres.

    ``pool`` is accepted for the API's sake and not used: the ops engine keeps its
    own small pool of connections (``opsdb.engine``).
    """
    return OpsApiKeys(settings)


class OpsApiKeys:
    """Key hashes in the ops database; unreachable means ``StoreUnavailable`` (a 503)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        try:
            with transaction(self._settings, write=write) as connection:
                yield connection
        except OpsDatabaseUnavailable as exc:
            raise StoreUnavailable(f"the API key store: {exc}") from exc
        except sa.exc.OperationalError as exc:  # the connection dropped mid-query
            raise StoreUnavailable("the API key store failed mid-query") from exc

    def insert(
        self, *, key_hash: str, tenant_id: str, key_prefix: str, created_at: datetime
    ) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(
                api_keys.insert().values(
                    key_hash=key_hash,
                    tenant_id=tenant_id,
                    key_prefix=key_prefix,
                    created_at=created_at,
                )
            )

    def find(self, *, key_hash: str) -> _StoredKey | None:
        if not ops_database_exists(self._settings):
            return None  # no key was ever created; do not litter an empty file
        k = api_keys.c
        with self._transaction(write=False) as connection:
            row = connection.execute(
                sa.select(k.key_hash, k.tenant_id).where(
                    k.key_hash == key_hash, k.revoked_at.is_(None)
                )
            ).first()
        return _StoredKey(key_hash=row[0], tenant_id=row[1]) if row else None

    def revoke(self, *, key_hash: str, revoked_at: datetime) -> bool:
        if not ops_database_exists(self._settings):
            return False
        k = api_keys.c
        with self._transaction(write=True) as connection:
            result = connection.execute(
                api_keys.update()
                .where(k.key_hash == key_hash, k.revoked_at.is_(None))
                .values(revoked_at=revoked_at)
            )
        return result.rowcount == 1

    def list_keys(self, *, tenant_id: str | None) -> list[ApiKeyInfo]:
        if not ops_database_exists(self._settings):
            return []
        k = api_keys.c
        query = sa.select(k.key_prefix, k.tenant_id, k.created_at, k.revoked_at).order_by(
            k.created_at.desc()
        )
        if tenant_id is not None:
            query = query.where(k.tenant_id == tenant_id)
        with self._transaction(write=False) as connection:
            rows = connection.execute(query).tuples().all()
        return [ApiKeyInfo(*row) for row in rows]
