"""Where connectors keep their state: incremental cursors and the load log.

A cursor is a small JSON document per (tenant, source, table) that says where
the next read starts, including a window still in progress, so a run that dies
mid-paging resumes where the lake stopped. The load log has one row per (run,
tenant, source, table) and feeds the ops dashboard.

Both live in the ops database (``ops.connector_cursors`` and ``ops.load_log`` on
Postgres, ``state/ops.sqlite`` embedded; tables in ``opsdb.tables``, created by the
``ops`` migrations), through the same code. A per-table lock keeps two runs of one
table from interleaving their merges: a Postgres session advisory lock, or an
``flock`` on a file beside the SQLite database; both die with their process.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from core.settings import Settings, Target
from opsdb.engine import (
    OpsDatabaseUnavailable,
    insert,
    ops_database_exists,
    session_connection,
    transaction,
)
from opsdb.tables import connector_cursors, load_log

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
    """The state store for ``settings``: the same code on SQLite and Postgres."""
    return OpsConnectorState(settings)


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


class StateStoreUnavailable(OpsDatabaseUnavailable):
    """The connector state (ops database) cannot be reached."""


class OpsConnectorState:
    """Cursors and load log in the ops database; a per-table lock beside them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        try:
            with transaction(self._settings, write=write) as connection:
                yield connection
        except OpsDatabaseUnavailable as exc:
            raise StateStoreUnavailable(f"connector state: {exc}") from exc

    def get_cursor(self, *, tenant_id: str, source: str, table: str) -> Cursor | None:
        if not ops_database_exists(self._settings):
            return None  # nothing was ever loaded; do not litter an empty file
        c = connector_cursors.c
        with self._transaction(write=False) as connection:
            value = connection.execute(
                sa.select(c.cursor).where(
                    c.tenant_id == tenant_id, c.source == source, c.table_name == table
                )
            ).scalar()
        return dict(value) if value is not None else None

    def put_cursor(self, *, tenant_id: str, source: str, table: str, cursor: Cursor) -> None:
        # Through JSON and back: the stored document is what a reader will get.
        document = json.loads(dump_cursor(cursor) or "null")
        with self._transaction(write=True) as connection:
            statement = insert(connection, connector_cursors).values(
                tenant_id=tenant_id,
                source=source,
                table_name=table,
                cursor=document,
                updated_at=datetime.now(UTC),
            )
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", "source", "table_name"],
                    set_={
                        "cursor": statement.excluded.cursor,
                        "updated_at": statement.excluded.updated_at,
                    },
                )
            )

    def record_load(self, row: LoadLogRow) -> None:
        values = asdict(row)
        for key in ("cursor_before", "cursor_after"):
            values[key] = None if values[key] is None else json.loads(values[key])
        with self._transaction(write=True) as connection:
            connection.execute(load_log.insert().values(**values))

    def read_load_log(
        self, *, tenant_id: str | None, source: str | None, table: str | None
    ) -> list[LoadLogRow]:
        if not ops_database_exists(self._settings):
            return []
        c = load_log.c
        query = sa.select(*(c[name] for name in LOAD_LOG_COLUMNS)).order_by(
            c.finished_at.desc(), c.table_name
        )
        for column, value in (("tenant_id", tenant_id), ("source", source), ("table_name", table)):
            if value is not None:
                query = query.where(c[column] == value)
        with self._transaction(write=False) as connection:
            rows = connection.execute(query).tuples().all()
        out = []
        for row in rows:
            values: dict[str, Any] = dict(zip(LOAD_LOG_COLUMNS, row, strict=True))
            for key in ("cursor_before", "cursor_after"):
                values[key] = dump_cursor(values[key])
            out.append(LoadLogRow(**values))
        return out

    @contextmanager
    def lock(self, *, tenant_id: str, source: str, table: str) -> Iterator[None]:
        busy = LoadInProgress(f"{source}/{table} of tenant {tenant_id!r} is being loaded")
        if self._settings.target is Target.POSTGRES:
            # A session advisory lock lives as long as this connection: a crashed
            # run releases it when its connection drops, with no stale lock to clean.
            key = _lock_name(tenant_id, source, table)
            with session_connection(self._settings) as connection:
                got = connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"),
                    {"key": key},
                ).scalar()
                if not got:
                    raise busy
                try:
                    yield
                finally:
                    connection.execute(
                        sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"),
                        {"key": key},
                    )
            return
        # flock is released by the kernel when the process dies: no stale locks.
        locks = self._settings.state_dir / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{tenant_id}.{source}.{table}.lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
