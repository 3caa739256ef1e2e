"""Dagster's embedded (SQLite) storage, with its event log's connections kept.

Dagster's ``SqliteEventLogStorage`` makes a new engine and connection for every
event it stores and closes it afterwards. Its shards are in WAL mode, so closing
the last connection checkpoints the WAL and deletes it: every event paid an
engine, a connect, a checkpoint and the fsyncs that go with them, and every new
run's shard paid Alembic loading its migration scripts to stamp the file. At
1,000 tenants that bookkeeping was over a third of a tenant's ingest CPU (py-spy,
bench/RESULTS.md). Here each shard's engine (and its one connection) is kept, a
few shards per process, least recently used closed first, and a new run's shard
is a copy of an empty one stamped once per process and Dagster version. Same
files, same layout, same schema: history written before is read as it was, and
``storage: sqlite`` can be switched back at any time.

On Postgres (``BIZOS_DATABASE_URL``) the event log made a new connection for every
event (dagster-postgres holds none open, so that instances do not pile up
connections): a server process started and a login per event, about 17 ms of wall
each here, and the run storage another for each of a run's status changes and
tags. ``PooledPostgresStorage`` is Dagster's Postgres storage with its engines
switched to the pool dagster-postgres itself uses in its webserver
(``optimize_for_webserver``): one connection kept per storage and process, a few
more while busy, recycled hourly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from dagster import __version__ as DAGSTER_VERSION
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    SqliteStorageConfig,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage.schedule_storage import PostgresScheduleStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

POOL_RECYCLE_S = 3600
"""A kept Postgres connection is replaced after this long (server restarts, proxies)."""
KEPT_SHARDS = 8
"""Shards whose engine (one open connection each) a process keeps: the index, and
the runs it is writing (a worker writes one run at a time)."""
TEMPLATE_DIR = ".shard-template"
"""Under the event log's folder; not ``*.db``, so never taken for a run's shard."""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with each shard's engine kept (see the module)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: SqliteStorageConfig
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = create_engine(
                self.conn_string_for_shard(shard),
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            self._engines[shard] = engine
            while len(self._engines) > KEPT_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._init_shard(shard, engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _init_shard(self, shard: str, engine: Engine) -> None:
        """A new run's shard is a copy of an empty one (made by Dagster's own
        ``_initdb`` once per process); the index, or a shard that exists, is checked
        by ``_initdb`` as Dagster does."""
        path = Path(self.path_for_shard(shard))
        if shard == INDEX_SHARD_NAME or path.exists():
            self._initdb(engine)
            return
        template = self._template()
        fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            shutil.copyfile(template, staged)
            # A hard link fails if the shard appeared meanwhile: never overwrite one.
            with contextlib.suppress(FileExistsError):
                os.link(staged, path)
        finally:
            os.unlink(staged)

    def _template(self) -> Path:
        folder = Path(self._base_dir) / TEMPLATE_DIR
        template = folder / f"run-shard-{DAGSTER_VERSION}.sqlite"
        if template.exists():
            return template
        folder.mkdir(exist_ok=True)
        fd, staged = tempfile.mkstemp(dir=folder, prefix=".new-")
        os.close(fd)
        os.unlink(staged)  # SQLite makes the file itself
        engine = create_engine(f"sqlite:///{staged}", poolclass=NullPool)
        try:
            self._initdb(engine)
        finally:
            engine.dispose()  # the last connection closed: the WAL is checkpointed in
        os.replace(staged, template)
        for leftover in (f"{staged}-wal", f"{staged}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        return template

    def has_table(self, table_name: str) -> bool:
        """Asked before storing every asset check event: tables, once there, stay."""
        if table_name in self._tables:
            return True
        with self._engine(INDEX_SHARD_NAME).connect() as conn:
            found = bool(conn.dialect.has_table(conn, table_name))
        if found:
            self._tables.add(table_name)
        return found

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            engines = list(self._engines.values())
            self._engines.clear()
        for engine in engines:
            engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()
        self._tables.clear()
        super().wipe()

    def upgrade(self) -> None:
        self._dispose_engines()
        super().upgrade()
        self._dispose_engines()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()


class PooledSqliteStorage(DagsterSqliteStorage):
    """``storage: sqlite`` with :class:`PooledSqliteEventLogStorage` as its event log;
    runs and schedules are Dagster's, in the same folders."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._inst_data = inst_data
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(
            __name__,
            PooledSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}),
        )


POSTGRES_PARTS = (PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage)


class PooledPostgresStorage(DagsterPostgresStorage):
    """``storage: postgres`` with the connections of its event log, run and schedule
    storages kept (see the module)."""

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledPostgresStorage:
        storage = cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
        # statement_timeout 0: none, as without the pool.
        for part in (storage.event_log_storage, storage.run_storage, storage.schedule_storage):
            assert isinstance(part, POSTGRES_PARTS)
            part.optimize_for_webserver(
                statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=4
            )
        return storage


def storage_entry(home: Path) -> dict[str, Any]:
    """dagster.yaml's ``storage`` for the embedded target (pipelines/runner.py)."""
    return {
        "custom": {
            "module": __name__,
            "class": PooledSqliteStorage.__name__,
            "config": {"base_dir": str(home)},
        }
    }


def postgres_storage_entry(postgres_db: dict[str, Any]) -> dict[str, Any]:
    """dagster.yaml's ``storage`` on the Postgres target: ``postgres_db`` as
    ``storage.postgres.postgres_db`` takes it (the password by environment variable)."""
    return {
        "custom": {
            "module": __name__,
            "class": PooledPostgresStorage.__name__,
            "config": {"postgres_db": postgres_db},
        }
    }
