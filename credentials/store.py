"""Where encrypted credentials live: one interface, a Postgres and an embedded SQLite store.

The store only ever sees ciphertexts, wrapped data keys, key ids and audit rows;
encryption happens in ``credentials.vault`` before anything reaches it. The
implementation is picked once, in ``credential_store``, from ``settings.target``.

Postgres target: tables in schema ``ops`` (``tenant_data_keys``,
``tenant_credentials``, ``credential_audit``), created on first use. Embedded
target: ``settings.state_dir / "credentials.sqlite"``, mode 0600.

Every operation is one transaction (``CredentialStore.transaction``) so a secret's
audit row commits with it, and a master-key rotation swaps all wrapped data keys
at once: a reader sees all of them under the old key or all under the new one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg

from core.settings import Settings, Target
from credentials.audit import AuditAction, AuditEntry, AuditOutcome
from credentials.crypto import CredentialError

SQLITE_FILE = "credentials.sqlite"


class CredentialStoreUnavailable(CredentialError):
    """The store cannot be reached (Postgres down, file unreadable)."""


@dataclass(frozen=True)
class StoredDataKey:
    """A tenant's data key as stored: encrypted under the master key with ``key_id``."""

    tenant_id: str
    key_id: str
    wrapped: bytes

    def __repr__(self) -> str:
        return f"StoredDataKey(tenant_id={self.tenant_id!r}, key_id={self.key_id!r})"


@dataclass(frozen=True)
class CredentialInfo:
    """What ``list`` shows about a stored credential: never its value."""

    tenant_id: str
    source: str
    created_at: datetime
    updated_at: datetime
    key_id: str


class CredentialTransaction(Protocol):
    """The operations of one store transaction; the vault composes them."""

    def lock_data_keys(self, *, for_rotation: bool) -> None:
        """Before creating a data key (shared) or re-wrapping all of them (exclusive)."""
        ...

    def data_key(self, tenant_id: str) -> StoredDataKey | None: ...

    def data_key_ids(self) -> set[str]:
        """Key ids of the master keys the stored data keys are wrapped under."""
        ...

    def all_data_keys(self) -> list[StoredDataKey]: ...

    def insert_data_key(self, key: StoredDataKey, *, at: datetime) -> bool:
        """False when the tenant already has one (another writer was first)."""
        ...

    def rewrap_data_key(self, key: StoredDataKey, *, at: datetime) -> None: ...

    def ciphertext(self, tenant_id: str, source: str) -> bytes | None: ...

    def put_ciphertext(
        self, tenant_id: str, source: str, ciphertext: bytes, *, at: datetime
    ) -> None: ...

    def delete_ciphertext(self, tenant_id: str, source: str) -> bool: ...

    def audit(self, entry: AuditEntry) -> None: ...


class CredentialStore(Protocol):
    def transaction(self) -> AbstractContextManager[CredentialTransaction]: ...

    def list_credentials(self, *, tenant_id: str | None) -> list[CredentialInfo]: ...

    def read_audit(self, *, tenant_id: str | None, limit: int | None) -> list[AuditEntry]: ...


def credential_store(settings: Settings) -> CredentialStore:
    """The store for ``settings.target``."""
    if settings.target is Target.POSTGRES:
        return PostgresCredentials(settings.postgres_url)
    return SqliteCredentials(settings.state_dir / SQLITE_FILE)


def _audit_entry(row: tuple[Any, ...], parse_time: bool) -> AuditEntry:
    at, actor, tenant_id, source, action, outcome = row
    return AuditEntry(
        at=datetime.fromisoformat(at) if parse_time else at,
        actor=actor,
        tenant_id=tenant_id,
        source=source,
        action=AuditAction(action),
        outcome=AuditOutcome(outcome),
    )


# -- Postgres ------------------------------------------------------------------------

_PG_TABLES = ("ops.tenant_data_keys", "ops.tenant_credentials", "ops.credential_audit")
_PG_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.tenant_data_keys (
    tenant_id    text PRIMARY KEY,
    key_id       text NOT NULL,
    wrapped_key  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    rewrapped_at timestamptz
);
CREATE TABLE IF NOT EXISTS ops.tenant_credentials (
    tenant_id  text NOT NULL REFERENCES ops.tenant_data_keys (tenant_id),
    source     text NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, source)
);
CREATE TABLE IF NOT EXISTS ops.credential_audit (
    audit_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    tenant_id text NOT NULL,
    source    text,
    action    text NOT NULL CHECK (action IN ('read', 'set', 'delete', 'rotate')),
    outcome   text NOT NULL CHECK (outcome IN ('ok', 'not_found', 'refused'))
);
CREATE INDEX IF NOT EXISTS credential_audit_tenant_idx
    ON ops.credential_audit (tenant_id, audit_id)
"""

_MISSING = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)


class PostgresCredentials:
    """Credentials in schema ``ops``; the tables are created on first use."""

    def __init__(self, url: str) -> None:
        self._url = url

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise CredentialStoreUnavailable(
                "the credentials store (Postgres) is unreachable"
            ) from exc

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        # Check first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
        # when the schema exists, and a connector's role need not have it.
        row = conn.execute(
            "SELECT " + " AND ".join(f"to_regclass('{t}') IS NOT NULL" for t in _PG_TABLES)
        ).fetchone()
        if row and row[0]:
            return
        # Serialize the CREATE ... IF NOT EXISTS of two first-time callers.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('bizos.credentials', 0))")
        for statement in _PG_SCHEMA.strip().split(";\n"):
            conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[CredentialTransaction]:
        with self._connect() as conn:
            with conn.transaction():
                self._ensure_schema(conn)
            with conn.transaction():
                yield _PostgresTransaction(conn)

    def list_credentials(self, *, tenant_id: str | None) -> list[CredentialInfo]:
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT c.tenant_id, c.source, c.created_at, c.updated_at, k.key_id"
                    " FROM ops.tenant_credentials c"
                    " JOIN ops.tenant_data_keys k USING (tenant_id)"
                    " WHERE %(tenant)s::text IS NULL OR c.tenant_id = %(tenant)s"
                    " ORDER BY c.tenant_id, c.source",
                    {"tenant": tenant_id},
                ).fetchall()
        except _MISSING:
            return []  # nothing was ever stored
        return [CredentialInfo(*row) for row in rows]

    def read_audit(self, *, tenant_id: str | None, limit: int | None) -> list[AuditEntry]:
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT at, actor, tenant_id, source, action, outcome"
                    " FROM ops.credential_audit"
                    " WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s"
                    " ORDER BY audit_id DESC LIMIT %(limit)s",
                    {"tenant": tenant_id, "limit": limit},
                ).fetchall()
        except _MISSING:
            return []
        return [_audit_entry(row, parse_time=False) for row in rows]


class _PostgresTransaction:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def lock_data_keys(self, *, for_rotation: bool) -> None:
        # ROW EXCLUSIVE (writers creating a data key) does not block other writers;
        # SHARE ROW EXCLUSIVE (a rotation) waits for them and holds them off until it
        # commits, so no data key is created under the old master key mid-rotation.
        # Neither blocks plain SELECTs: readers carry on with their snapshot.
        mode = "SHARE ROW EXCLUSIVE" if for_rotation else "ROW EXCLUSIVE"
        self._conn.execute(f"LOCK TABLE ops.tenant_data_keys IN {mode} MODE")

    def data_key(self, tenant_id: str) -> StoredDataKey | None:
        row = self._conn.execute(
            "SELECT tenant_id, key_id, wrapped_key FROM ops.tenant_data_keys WHERE tenant_id = %s",
            [tenant_id],
        ).fetchone()
        return StoredDataKey(row[0], row[1], bytes(row[2])) if row else None

    def data_key_ids(self) -> set[str]:
        rows = self._conn.execute("SELECT DISTINCT key_id FROM ops.tenant_data_keys").fetchall()
        return {row[0] for row in rows}

    def all_data_keys(self) -> list[StoredDataKey]:
        rows = self._conn.execute(
            "SELECT tenant_id, key_id, wrapped_key FROM ops.tenant_data_keys ORDER BY tenant_id"
        ).fetchall()
        return [StoredDataKey(row[0], row[1], bytes(row[2])) for row in rows]

    def insert_data_key(self, key: StoredDataKey, *, at: datetime) -> bool:
        cur = self._conn.execute(
            "INSERT INTO ops.tenant_data_keys (tenant_id, key_id, wrapped_key, created_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id) DO NOTHING",
            [key.tenant_id, key.key_id, key.wrapped, at],
        )
        return cur.rowcount == 1

    def rewrap_data_key(self, key: StoredDataKey, *, at: datetime) -> None:
        self._conn.execute(
            "UPDATE ops.tenant_data_keys SET key_id = %s, wrapped_key = %s, rewrapped_at = %s"
            " WHERE tenant_id = %s",
            [key.key_id, key.wrapped, at, key.tenant_id],
        )

    def ciphertext(self, tenant_id: str, source: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT ciphertext FROM ops.tenant_credentials WHERE tenant_id = %s AND source = %s",
            [tenant_id, source],
        ).fetchone()
        return bytes(row[0]) if row else None

    def put_ciphertext(
        self, tenant_id: str, source: str, ciphertext: bytes, *, at: datetime
    ) -> None:
        self._conn.execute(
            "INSERT INTO ops.tenant_credentials"
            " (tenant_id, source, ciphertext, created_at, updated_at)"
            " VALUES (%(tenant)s, %(source)s, %(ciphertext)s, %(at)s, %(at)s)"
            " ON CONFLICT (tenant_id, source) DO UPDATE"
            " SET ciphertext = EXCLUDED.ciphertext, updated_at = EXCLUDED.updated_at",
            {"tenant": tenant_id, "source": source, "ciphertext": ciphertext, "at": at},
        )

    def delete_ciphertext(self, tenant_id: str, source: str) -> bool:
        cur = self._conn.execute(
            "DELETE FROM ops.tenant_credentials WHERE tenant_id = %s AND source = %s",
            [tenant_id, source],
        )
        return cur.rowcount == 1

    def audit(self, entry: AuditEntry) -> None:
        self._conn.execute(
            "INSERT INTO ops.credential_audit (at, actor, tenant_id, source, action, outcome)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                entry.at,
                entry.actor,
                entry.tenant_id,
                entry.source,
                entry.action.value,
                entry.outcome.value,
            ],
        )


# -- SQLite (embedded target) --------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_data_keys (
    tenant_id    TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    rewrapped_at TEXT
);
CREATE TABLE IF NOT EXISTS tenant_credentials (
    tenant_id  TEXT NOT NULL REFERENCES tenant_data_keys (tenant_id),
    source     TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, source)
);
CREATE TABLE IF NOT EXISTS credential_audit (
    audit_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    source    TEXT,
    action    TEXT NOT NULL CHECK (action IN ('read', 'set', 'delete', 'rotate')),
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'not_found', 'refused'))
);
CREATE INDEX IF NOT EXISTS credential_audit_tenant_idx
    ON credential_audit (tenant_id, audit_id);
"""


class SqliteCredentials:
    """Credentials in a SQLite file: the embedded target has no server to keep them in."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _open(self, *, create: bool) -> sqlite3.Connection | None:
        if not create and not self._path.exists():
            return None  # nothing was ever stored; do not litter an empty file
        try:
            if create and not self._path.exists():
                self._path.parent.mkdir(parents=True, exist_ok=True)
                # Owner-only from the start; SQLite gives its -wal/-shm files the same mode.
                os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
            # Autocommit mode: transactions are begun explicitly, IMMEDIATE for writes.
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA foreign_keys=ON")
            if create:
                _initialize(conn)
        except (OSError, sqlite3.Error) as exc:
            raise CredentialStoreUnavailable(
                f"the credentials store {self._path} cannot be opened"
            ) from exc
        return conn

    @contextmanager
    def transaction(self) -> Iterator[CredentialTransaction]:
        conn = self._open(create=True)
        assert conn is not None
        with closing(conn):
            # IMMEDIATE takes the write lock up front: every operation writes at least
            # an audit row, and taking the lock late could fail with SQLITE_BUSY.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def list_credentials(self, *, tenant_id: str | None) -> list[CredentialInfo]:
        conn = self._open(create=False)
        if conn is None:
            return []
        with closing(conn):
            rows = conn.execute(
                "SELECT c.tenant_id, c.source, c.created_at, c.updated_at, k.key_id"
                " FROM tenant_credentials c JOIN tenant_data_keys k USING (tenant_id)"
                " WHERE ?1 IS NULL OR c.tenant_id = ?1"
                " ORDER BY c.tenant_id, c.source",
                [tenant_id],
            ).fetchall()
        return [
            CredentialInfo(
                tenant_id=tenant,
                source=source,
                created_at=datetime.fromisoformat(created),
                updated_at=datetime.fromisoformat(updated),
                key_id=key_id,
            )
            for tenant, source, created, updated, key_id in rows
        ]

    def read_audit(self, *, tenant_id: str | None, limit: int | None) -> list[AuditEntry]:
        conn = self._open(create=False)
        if conn is None:
            return []
        with closing(conn):
            rows = conn.execute(
                "SELECT at, actor, tenant_id, source, action, outcome FROM credential_audit"
                " WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY audit_id DESC LIMIT ?2",
                [tenant_id, -1 if limit is None else limit],
            ).fetchall()
        return [_audit_entry(row, parse_time=True) for row in rows]


def _initialize(conn: sqlite3.Connection) -> None:
    """WAL mode and the tables, once per file; safe when several writers start at once."""
    deadline = time.monotonic() + 10
    while True:
        try:
            # WAL (persistent in the file): list and audit reads go on while a writer
            # or a rotation commits. Switching to it needs the file to itself and fails
            # at once, without SQLite's busy wait, while another connection has it open.
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SQLITE_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def lock_data_keys(self, *, for_rotation: bool) -> None:
        pass  # BEGIN IMMEDIATE already made this the only writer

    def data_key(self, tenant_id: str) -> StoredDataKey | None:
        row = self._conn.execute(
            "SELECT tenant_id, key_id, wrapped_key FROM tenant_data_keys WHERE tenant_id = ?",
            [tenant_id],
        ).fetchone()
        return StoredDataKey(row[0], row[1], bytes(row[2])) if row else None

    def data_key_ids(self) -> set[str]:
        rows = self._conn.execute("SELECT DISTINCT key_id FROM tenant_data_keys").fetchall()
        return {row[0] for row in rows}

    def all_data_keys(self) -> list[StoredDataKey]:
        rows = self._conn.execute(
            "SELECT tenant_id, key_id, wrapped_key FROM tenant_data_keys ORDER BY tenant_id"
        ).fetchall()
        return [StoredDataKey(row[0], row[1], bytes(row[2])) for row in rows]

    def insert_data_key(self, key: StoredDataKey, *, at: datetime) -> bool:
        cur = self._conn.execute(
            "INSERT INTO tenant_data_keys (tenant_id, key_id, wrapped_key, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING",
            [key.tenant_id, key.key_id, key.wrapped, at.isoformat()],
        )
        return cur.rowcount == 1

    def rewrap_data_key(self, key: StoredDataKey, *, at: datetime) -> None:
        self._conn.execute(
            "UPDATE tenant_data_keys SET key_id = ?, wrapped_key = ?, rewrapped_at = ?"
            " WHERE tenant_id = ?",
            [key.key_id, key.wrapped, at.isoformat(), key.tenant_id],
        )

    def ciphertext(self, tenant_id: str, source: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT ciphertext FROM tenant_credentials WHERE tenant_id = ? AND source = ?",
            [tenant_id, source],
        ).fetchone()
        return bytes(row[0]) if row else None

    def put_ciphertext(
        self, tenant_id: str, source: str, ciphertext: bytes, *, at: datetime
    ) -> None:
        self._conn.execute(
            "INSERT INTO tenant_credentials (tenant_id, source, ciphertext, created_at, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (tenant_id, source) DO UPDATE"
            " SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
            [tenant_id, source, ciphertext, at.isoformat()],
        )

    def delete_ciphertext(self, tenant_id: str, source: str) -> bool:
        cur = self._conn.execute(
            "DELETE FROM tenant_credentials WHERE tenant_id = ? AND source = ?",
            [tenant_id, source],
        )
        return cur.rowcount == 1

    def audit(self, entry: AuditEntry) -> None:
        self._conn.execute(
            "INSERT INTO credential_audit (at, actor, tenant_id, source, action, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                entry.at.isoformat(),
                entry.actor,
                entry.tenant_id,
                entry.source,
                entry.action.value,
                entry.outcome.value,
            ],
        )
