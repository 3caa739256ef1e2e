"""Where connectors keep their state: incremental cursors and the load log.

A cursor is a small JSON document per (tenant, source, table) that says where
the next read starts, including a window still in progress, so a run that dies
mid-paging resumes where the lake stopped. The load log has one row per (run,
tenant, source, table) and feeds the ops dashboard.

Postgres target: schema ``ops`` (``ops.connector_cursors``, ``ops.load_log``).
Embedded target: ``settings.state_dir / "connectors.sqlite"``. Both also hold a
per-table lock so two runs of one table never interleave their merges.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg

from core.settings import Settings, Target

Cursor = dict[str, Any]


class LoadInProgress(RuntimeError):
    """Another run holds the lock of this (tenant, source, table)."""


@dataclass(frozen=True)
class LoadLogRow:
    """One load of one table for one tenant; ``error`` is already masked."""

    run_id: str
    tenant_id: str
    source: str
    table_name: str
    rows_in: int
    rows_loaded: int
    rows_added: int
    rows_quarantined: int
    cursor_before: str | None
    cursor_after: str | None
    bytes: int
    duration_s: float
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime


LOAD_LOG_COLUMNS = tuple(f.name for f in fields(LoadLogRow))


class ConnectorStateStore(Protocol):
    def get_cursor(self, *, tenant_id: str, source: str, table: str) -> Cursor | None: ...

    def put_cursor(self, *, tenant_id: str, source: str, table: str, cursor: Cursor) -> None: ...

    def record_load(self, row: LoadLogRow) -> None: ...

    def read_load_log(
        self, *, tenant_id: str | None, source: str | None, table: str | None
    ) -> list[LoadLogRow]: ...

    def lock(self, *, tenant_id: str, source: str, table: str) -> Any:
        """A context manager; raises ``LoadInProgress`` when the table is being loaded."""
        ...


def connector_state(settings: Settings) -> ConnectorStateStore:
    """The state store for ``settings.target``."""
    if settings.target is Target.POSTGRES:
        return PostgresConnectorState(settings.postgres_url)
    return SqliteConnectorState(settings.state_dir / "connectors.sqlite")


def read_load_log(
    settings: Settings,
    tenant_id: str | None = None,
    *,
    source: str | None = None,
    table: str | None = None,
) -> list[LoadLogRow]:
    """Load log rows, newest first; every tenant when ``tenant_id`` is None."""
    return connector_state(settings).read_load_log(tenant_id=tenant_id, source=source, table=table)


def read_cursor(settings: Settings, *, tenant_id: str, source: str, table: str) -> Cursor | None:
    return connector_state(settings).get_cursor(tenant_id=tenant_id, source=source, table=table)


def dump_cursor(cursor: Cursor | None) -> str | None:
    return None if cursor is None else json.dumps(cursor, sort_keys=True, separators=(",", ":"))


def _lock_name(tenant_id: str, source: str, table: str) -> str:
    return f"bizos.connector:{tenant_id}:{source}:{table}"


# -- Postgres ------------------------------------------------------------------------

_PG_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.connector_cursors (
    tenant_id  text NOT NULL,
    source     text NOT NULL,
    table_name text NOT NULL,
    cursor     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source, table_name)
);
CREATE TABLE IF NOT EXISTS ops.load_log (
    run_id           text NOT NULL,
    tenant_id        text NOT NULL,
    source           text NOT NULL,
    table_name       text NOT NULL,
    rows_in          bigint NOT NULL,
    rows_loaded      bigint NOT NULL,
    rows_added       bigint NOT NULL,
    rows_quarantined bigint NOT NULL,
    cursor_before    jsonb,
    cursor_after     jsonb,
    bytes            bigint NOT NULL,
    duration_s       double precision NOT NULL,
    status           text NOT NULL CHECK (status IN ('success', 'failed')),
    error            text,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    PRIMARY KEY (run_id, tenant_id, source, table_name)
);
CREATE INDEX IF NOT EXISTS load_log_tenant_idx ON ops.load_log (tenant_id, finished_at DESC)
"""


class PostgresConnectorState:
    """Cursors and load log in schema ``ops``; created on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._ready = False

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._url, connect_timeout=10)
        if not self._ready:
            with conn.transaction():
                # Serialize the CREATE ... IF NOT EXISTS of two first-time callers.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('bizos.ops', 0))")
                for statement in _PG_SCHEMA.strip().split(";\n"):
                    conn.execute(statement)
            self._ready = True
        return conn

    def get_cursor(self, *, tenant_id: str, source: str, table: str) -> Cursor | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT cursor FROM ops.connector_cursors"
                " WHERE tenant_id = %s AND source = %s AND table_name = %s",
                [tenant_id, source, table],
            ).fetchone()
        return dict(row[0]) if row else None

    def put_cursor(self, *, tenant_id: str, source: str, table: str, cursor: Cursor) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO ops.connector_cursors (tenant_id, source, table_name, cursor)"
                " VALUES (%s, %s, %s, %s::jsonb)"
                " ON CONFLICT (tenant_id, source, table_name)"
                " DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
                [tenant_id, source, table, dump_cursor(cursor)],
            )

    def record_load(self, row: LoadLogRow) -> None:
        values = asdict(row)
        placeholders = ", ".join(
            f"%({c})s::jsonb" if c.startswith("cursor_") else f"%({c})s" for c in LOAD_LOG_COLUMNS
        )
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO ops.load_log ({', '.join(LOAD_LOG_COLUMNS)}) VALUES ({placeholders})",
                values,
            )

    def read_load_log(
        self, *, tenant_id: str | None, source: str | None, table: str | None
    ) -> list[LoadLogRow]:
        columns = ", ".join(
            f"{c}::text" if c.startswith("cursor_") else c for c in LOAD_LOG_COLUMNS
        )
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {columns} FROM ops.load_log"
                " WHERE (%(tenant)s::text IS NULL OR tenant_id = %(tenant)s)"
                " AND (%(source)s::text IS NULL OR source = %(source)s)"
                " AND (%(table)s::text IS NULL OR table_name = %(table)s)"
                " ORDER BY finished_at DESC, table_name",
                {"tenant": tenant_id, "source": source, "table": table},
            ).fetchall()
        out = []
        for row in rows:
            values = dict(zip(LOAD_LOG_COLUMNS, row, strict=True))
            for key in ("cursor_before", "cursor_after"):
                # jsonb's text form reorders keys; give back the same form sqlite keeps.
                if values[key] is not None:
                    values[key] = dump_cursor(json.loads(values[key]))
            out.append(LoadLogRow(**values))
        return out

    @contextmanager
    def lock(self, *, tenant_id: str, source: str, table: str) -> Iterator[None]:
        # A session advisory lock lives as long as this connection: a crashed
        # run releases it when its connection drops, with no stale lock to clean.
        with self._connect() as conn:
            conn.autocommit = True
            key = _lock_name(tenant_id, source, table)
            got = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key]
            ).fetchone()
            if not got or not got[0]:
                raise LoadInProgress(f"{source}/{table} of tenant {tenant_id!r} is being loaded")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


# -- SQLite (embedded target) --------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS connector_cursors (
    tenant_id TEXT NOT NULL, source TEXT NOT NULL, table_name TEXT NOT NULL,
    cursor TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')),
    PRIMARY KEY (tenant_id, source, table_name));
CREATE TABLE IF NOT EXISTS load_log (
    run_id TEXT NOT NULL, tenant_id TEXT NOT NULL, source TEXT NOT NULL,
    table_name TEXT NOT NULL, rows_in INTEGER NOT NULL, rows_loaded INTEGER NOT NULL,
    rows_added INTEGER NOT NULL, rows_quarantined INTEGER NOT NULL,
    cursor_before TEXT, cursor_after TEXT, bytes INTEGER NOT NULL, duration_s REAL NOT NULL,
    status TEXT NOT NULL, error TEXT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, tenant_id, source, table_name));
"""


class SqliteConnectorState:
    """Cursors and load log in one SQLite file; the embedded target has no server."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _open(self, *, create: bool) -> sqlite3.Connection | None:
        if not create and not self._path.exists():
            return None  # nothing was ever loaded; do not litter an empty file
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=30)
        conn.executescript(_SQLITE_SCHEMA)
        return conn

    def get_cursor(self, *, tenant_id: str, source: str, table: str) -> Cursor | None:
        conn = self._open(create=False)
        if conn is None:
            return None
        with closing(conn):
            row = conn.execute(
                "SELECT cursor FROM connector_cursors"
                " WHERE tenant_id = ? AND source = ? AND table_name = ?",
                [tenant_id, source, table],
            ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def put_cursor(self, *, tenant_id: str, source: str, table: str, cursor: Cursor) -> None:
        conn = self._open(create=True)
        assert conn is not None
        with closing(conn), conn:
            conn.execute(
                "INSERT INTO connector_cursors (tenant_id, source, table_name, cursor)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, source, table_name)"
                " DO UPDATE SET cursor = excluded.cursor,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ')",
                [tenant_id, source, table, dump_cursor(cursor)],
            )

    def record_load(self, row: LoadLogRow) -> None:
        values = asdict(row)
        values["started_at"] = row.started_at.isoformat()
        values["finished_at"] = row.finished_at.isoformat()
        conn = self._open(create=True)
        assert conn is not None
        with closing(conn), conn:
            conn.execute(
                f"INSERT INTO load_log ({', '.join(LOAD_LOG_COLUMNS)})"
                f" VALUES ({', '.join(':' + c for c in LOAD_LOG_COLUMNS)})",
                values,
            )

    def read_load_log(
        self, *, tenant_id: str | None, source: str | None, table: str | None
    ) -> list[LoadLogRow]:
        conn = self._open(create=False)
        if conn is None:
            return []
        with closing(conn):
            rows = conn.execute(
                f"SELECT {', '.join(LOAD_LOG_COLUMNS)} FROM load_log"
                " WHERE (:tenant IS NULL OR tenant_id = :tenant)"
                " AND (:source IS NULL OR source = :source)"
                " AND (:table IS NULL OR table_name = :table)"
                " ORDER BY finished_at DESC, table_name",
                {"tenant": tenant_id, "source": source, "table": table},
            ).fetchall()
        out = []
        for row in rows:
            values = dict(zip(LOAD_LOG_COLUMNS, row, strict=True))
            values["started_at"] = datetime.fromisoformat(values["started_at"])
            values["finished_at"] = datetime.fromisoformat(values["finished_at"])
            out.append(LoadLogRow(**values))
        return out

    @contextmanager
    def lock(self, *, tenant_id: str, source: str, table: str) -> Iterator[None]:
        # flock is released by the kernel when the process dies: no stale locks.
        locks = self._path.parent / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        path = locks / f"{tenant_id}.{source}.{table}.lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LoadInProgress(
                    f"{source}/{table} of tenant {tenant_id!r} is being loaded"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
