"""One engine per process and database, with the dialect differences kept here.

- Postgres: tables in schema ``ops``; a small connection pool with pre-ping, so the
  API's per-request key lookup does not pay a new connection each time.
- SQLite (embedded): ``BIZOS_HOME/state/ops.sqlite``, mode 0600, WAL, foreign keys on.
  Tables are declared in schema ``ops`` and mapped to the file's main schema. Each
  transaction starts with ``BEGIN IMMEDIATE`` when it will write, so two writers
  queue on SQLite's lock instead of failing with ``SQLITE_BUSY`` half-way.

Every store opens its transactions through ``transaction``, which first calls
``migrations.ensure_current(settings, "ops")``: a database that is behind is
upgraded once per process, one that is ahead is refused (``SchemaAhead``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.settings import Settings, Target
from migrations import engine_url, ensure_current, ops_sqlite_path

_engines: dict[tuple[int, str], sa.Engine] = {}
_engines_lock = threading.Lock()
# How long a SQLite writer waits for another one before giving up.
SQLITE_BUSY_TIMEOUT_S = 30
_WRITE = "bizos_write"


class OpsDatabaseUnavailable(RuntimeError):
    """The ops database cannot be reached or opened; each store re-raises its own kind."""


def ops_engine(settings: Settings) -> sa.Engine:
    """The engine of the ops database for ``settings``; one per process and URL."""
    url = engine_url(settings)
    key = (os.getpid(), url.render_as_string(hide_password=False))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(url)
        return engine


def _create_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(
            url,
            pool_size=5,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10},
        )
    engine = sa.create_engine(
        url,
        poolclass=sa.NullPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        execution_options={"schema_translate_map": {"ops": None}},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def ops_database_exists(settings: Settings) -> bool:
    """False only for an embedded store never written to: reads must not create it."""
    return settings.target is Target.POSTGRES or ops_sqlite_path(settings).exists()


@contextmanager
def transaction(settings: Settings, *, write: bool = True) -> Iterator[sa.Connection]:
    """One transaction on the current ops schema; commits on success, else rolls back."""
    try:
        ensure_current(settings, "ops")
        connection = ops_engine(settings).connect()
    except sa.exc.OperationalError as exc:
        raise OpsDatabaseUnavailable(_where(settings)) from exc
    with connection:
        connection.execution_options(**{_WRITE: write})
        with connection.begin():
            yield connection


@contextmanager
def session_connection(settings: Settings) -> Iterator[sa.Connection]:
    """A connection in autocommit mode, for session-level locks held across transactions."""
    try:
        ensure_current(settings, "ops")
        connection = ops_engine(settings).connect()
    except sa.exc.OperationalError as exc:
        raise OpsDatabaseUnavailable(_where(settings)) from exc
    with connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield connection
        finally:
            # Never hand a connection that held a session lock back to the pool.
            connection.invalidate()


def insert(connection: sa.Connection, table: sa.Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing``/``_do_update`` for this dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _where(settings: Settings) -> str:
    if settings.target is Target.POSTGRES:
        pg = settings.postgres
        return f"the ops database (Postgres at {pg.host}:{pg.port}/{pg.dbname}) is unreachable"
    return f"the ops database {ops_sqlite_path(settings)} cannot be opened"
