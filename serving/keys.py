"""Tenant-bound API keys: the key is shown once, only its SHA-256 is kept.

A key is ``bz_`` + 32 random bytes (urlsafe base64). It says nothing about its
tenant: the tenant comes from the stored row, so a key cannot be edited into
another tenant's. A plain SHA-256 (no salt, no slow hash) is enough because the
keys carry 256 bits of randomness: there is nothing to guess, and a fast hash lets
every request look its key up by an index.

Postgres target: ``serving_admin.api_keys``, a schema bizos_reader is never
granted. Embedded target: ``settings.state_dir / "api_keys.sqlite"``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg_pool import PoolTimeout

from core.settings import Settings, Target
from core.tenancy import check_tenant_id
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
    """The key store for ``settings.target``; the API passes its pool, scripts do not."""
    if settings.target is Target.POSTGRES:
        url = settings.postgres_url
        if pool is not None:
            return PostgresApiKeys(pool.connection)
        return PostgresApiKeys(lambda: psycopg.connect(url, connect_timeout=10))
    return SqliteApiKeys(settings.state_dir / "api_keys.sqlite")


# -- Postgres ------------------------------------------------------------------------

_PG_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS serving_admin;
CREATE TABLE IF NOT EXISTS serving_admin.api_keys (
    key_hash   text PRIMARY KEY,
    tenant_id  text NOT NULL,
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON serving_admin.api_keys (tenant_id);
"""


class PostgresApiKeys:
    """Keys in ``serving_admin.api_keys``; created on first insert."""

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]):
        self._connect = connect

    def insert(
        self, *, key_hash: str, tenant_id: str, key_prefix: str, created_at: datetime
    ) -> None:
        with self._connect() as conn, conn.transaction():
            # Serialize the CREATE ... IF NOT EXISTS of two first-time callers.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('bizos.api_keys', 0))")
            for statement in _PG_SCHEMA.strip().split(";\n"):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO serving_admin.api_keys (key_hash, tenant_id, key_prefix, created_at)"
                " VALUES (%s, %s, %s, %s)",
                [key_hash, tenant_id, key_prefix, created_at],
            )

    def find(self, *, key_hash: str) -> _StoredKey | None:
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT key_hash, tenant_id FROM serving_admin.api_keys"
                    " WHERE key_hash = %s AND revoked_at IS NULL",
                    [key_hash],
                ).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return None  # no key was ever created
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc
        return _StoredKey(key_hash=row[0], tenant_id=row[1]) if row else None

    def revoke(self, *, key_hash: str, revoked_at: datetime) -> bool:
        try:
            with self._connect() as conn:
                cur = conn.execute(
                    "UPDATE serving_admin.api_keys SET revoked_at = %s"
                    " WHERE key_hash = %s AND revoked_at IS NULL",
                    [revoked_at, key_hash],
                )
                return cur.rowcount == 1
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return False

    def list_keys(self, *, tenant_id: str | None) -> list[ApiKeyInfo]:
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT key_prefix, tenant_id, created_at, revoked_at"
                    " FROM serving_admin.api_keys"
                    " WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s"
                    " ORDER BY created_at DESC",
                    {"tenant": tenant_id},
                ).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return []
        return [ApiKeyInfo(*row) for row in rows]


# -- SQLite (embedded target) --------------------------------------------------------


class SqliteApiKeys:
    """Keys in a SQLite file: the embedded target has no server to keep them in."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _open(self, *, create: bool) -> sqlite3.Connection | None:
        if not create and not self._path.exists():
            return None  # no key was ever created; do not litter an empty file
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=10)
        if create:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS api_keys ("
                " key_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, key_prefix TEXT NOT NULL,"
                " created_at TEXT NOT NULL, revoked_at TEXT)"
            )
        return conn

    def insert(
        self, *, key_hash: str, tenant_id: str, key_prefix: str, created_at: datetime
    ) -> None:
        conn = self._open(create=True)
        assert conn is not None
        with closing(conn), conn:
            conn.execute(
                "INSERT INTO api_keys (key_hash, tenant_id, key_prefix, created_at)"
                " VALUES (?, ?, ?, ?)",
                [key_hash, tenant_id, key_prefix, created_at.isoformat()],
            )

    def find(self, *, key_hash: str) -> _StoredKey | None:
        conn = self._open(create=False)
        if conn is None:
            return None
        try:
            with closing(conn):
                row = conn.execute(
                    "SELECT key_hash, tenant_id FROM api_keys"
                    " WHERE key_hash = ? AND revoked_at IS NULL",
                    [key_hash],
                ).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable("the API key file cannot be read") from exc
        return _StoredKey(key_hash=row[0], tenant_id=row[1]) if row else None

    def revoke(self, *, key_hash: str, revoked_at: datetime) -> bool:
        conn = self._open(create=False)
        if conn is None:
            return False
        with closing(conn), conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL",
                [revoked_at.isoformat(), key_hash],
            )
            return cur.rowcount == 1

    def list_keys(self, *, tenant_id: str | None) -> list[ApiKeyInfo]:
        conn = self._open(create=False)
        if conn is None:
            return []
        with closing(conn):
            rows = conn.execute(
                "SELECT key_prefix, tenant_id, created_at, revoked_at FROM api_keys"
                " WHERE ? IS NULL OR tenant_id = ? ORDER BY created_at DESC",
                [tenant_id, tenant_id],
            ).fetchall()
        return [
            ApiKeyInfo(
                key_prefix=prefix,
                tenant_id=tenant,
                created_at=datetime.fromisoformat(created),
                revoked_at=datetime.fromisoformat(revoked) if revoked else None,
            )
            for prefix, tenant, created, revoked in rows
        ]
