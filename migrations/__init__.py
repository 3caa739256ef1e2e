"""Schema migrations (Alembic) for the platform's own tables.

Two trees, each with its own version table, so each schema moves on its own:

- ``ops``: connector cursors and the load log, tenant credentials and their audit,
  API keys. Postgres schema ``ops`` in production; one SQLite file
  (``BIZOS_HOME/state/ops.sqlite``) on the embedded target.
- ``serving``: the tables the API and Superset read, built from the mart
  contracts in ``core.contracts``. Postgres only: the embedded serving store is
  Parquet files behind views (see ``serving.duckdb_store``).

Every store calls ``ensure_current`` before it touches its tables: a store that
is behind is upgraded (under a lock, so two processes never upgrade at once), one
that is *ahead* of this code (a newer release migrated it) is refused with
``SchemaAhead`` rather than written with the wrong shape.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock

from core.settings import Settings, Target

HERE = Path(__file__).resolve().parent
# One advisory-lock key per tree: upgrades of the same tree never overlap.
_LOCK_KEYS = {"ops": 0x6269_7A6F_0001, "serving": 0x6269_7A6F_0002}
_checked: set[tuple[str, str]] = set()
_checked_lock = threading.Lock()


class SchemaAhead(RuntimeError):
    """The database was migrated by a newer version of the platform than this one."""


@dataclass(frozen=True)
class Tree:
    name: str
    version_table: str
    postgres_schema: str
    targets: frozenset[Target]

    @property
    def script_location(self) -> Path:
        return HERE / self.name


TREES = {
    "ops": Tree("ops", "alembic_version_ops", "ops", frozenset({Target.DUCKDB, Target.POSTGRES})),
    "serving": Tree("serving", "alembic_version_serving", "serving", frozenset({Target.POSTGRES})),
}


def ops_sqlite_path(settings: Settings) -> Path:
    return settings.state_dir / "ops.sqlite"


def engine_url(settings: Settings) -> sa.URL:
    """The SQLAlchemy URL of the ops/serving database for ``settings.target``."""
    if settings.target is Target.POSTGRES:
        pg = settings.postgres
        return sa.URL.create(
            "postgresql+psycopg",
            username=pg.user,
            password=pg.password or None,
            host=pg.host,
            port=pg.port,
            database=pg.dbname,
        )
    return sa.URL.create("sqlite", database=str(ops_sqlite_path(settings)))


def _config(tree: Tree, connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(tree.script_location))
    config.attributes["connection"] = connection
    config.attributes["tree"] = tree
    return config


def head(tree_name: str) -> str | None:
    tree = TREES[tree_name]
    script = ScriptDirectory(str(tree.script_location))
    return script.get_current_head()


def _version_table_schema(tree: Tree, connection: sa.Connection) -> str | None:
    return tree.postgres_schema if connection.dialect.name == "postgresql" else None


def current(connection: sa.Connection, tree_name: str) -> str | None:
    tree = TREES[tree_name]
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": tree.version_table,
            "version_table_schema": _version_table_schema(tree, connection),
        },
    )
    return context.get_current_revision()


@contextmanager
def _upgrade_lock(settings: Settings, tree: Tree, connection: sa.Connection) -> Iterator[None]:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({_LOCK_KEYS[tree.name]})")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEYS[tree.name]})")
    else:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(settings.state_dir / f".migrate-{tree.name}.lock"), timeout=120):
            yield


def upgrade(settings: Settings, tree_name: str, *, revision: str = "head") -> str | None:
    """Bring ``tree_name`` up to ``revision``; SchemaAhead if the database is newer."""
    tree = TREES[tree_name]
    if settings.target not in tree.targets:
        raise ValueError(f"the {tree_name} migrations apply to {sorted(tree.targets)} only")
    if settings.target is Target.DUCKDB:
        _create_sqlite_file(ops_sqlite_path(settings))
    engine = sa.create_engine(engine_url(settings), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            with _upgrade_lock(settings, tree, connection):
                connection.commit()
                if connection.dialect.name == "sqlite":
                    # WAL is a property of the file, set once: readers go on while a
                    # writer commits. Switching needs the file to itself, so do it
                    # here, under the upgrade lock, before any store opens it.
                    if connection.exec_driver_sql("PRAGMA journal_mode").scalar() != "wal":
                        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                found = current(connection, tree_name)
                _refuse_if_ahead(tree, found)
                if found != head(tree_name) or revision != "head":
                    command.upgrade(_config(tree, connection), revision)
                    connection.commit()
                return current(connection, tree_name)
    finally:
        engine.dispose()


def _create_sqlite_file(path: Path) -> None:
    """The embedded ops file, owner-only from its first byte: it holds wrapped keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_CREAT with 0600 leaves no moment at the umask's mode; SQLite gives its -wal
    # and -shm files the mode of the database file.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)  # a file made by an older release at the umask's mode


def _refuse_if_ahead(tree: Tree, found: str | None) -> None:
    if found is None:
        return
    script = ScriptDirectory(str(tree.script_location))
    try:
        script.get_revision(found)
    except Exception as exc:  # alembic raises CommandError/ResolutionError subclasses
        raise SchemaAhead(
            f"the {tree.name} schema is at revision {found}, which this version of the "
            f"platform does not know (its newest is {script.get_current_head()}): it was "
            "migrated by a newer release; run that release, or restore a backup"
        ) from exc


def ensure_current(settings: Settings, tree_name: str) -> None:
    """Upgrade ``tree_name`` once per process and database; SchemaAhead if it is newer."""
    key = (tree_name, str(engine_url(settings)))
    with _checked_lock:
        if key in _checked:
            return
    upgrade(settings, tree_name)
    with _checked_lock:
        _checked.add(key)


@dataclass(frozen=True)
class TreeStatus:
    """Where one tree's database stands against this code (``bizos db status``)."""

    tree: str
    current: str | None
    head: str | None

    @property
    def state(self) -> str:
        if self.current == self.head:
            return "current"
        if self.current is None:
            return "empty"
        script = ScriptDirectory(str(TREES[self.tree].script_location))
        try:
            script.get_revision(self.current)
        except Exception:
            return "ahead"
        return "behind"


def status(settings: Settings, tree_name: str) -> TreeStatus:
    """The revision the database is at and this code's head; reads only, creates nothing."""
    if settings.target is Target.DUCKDB and not ops_sqlite_path(settings).exists():
        return TreeStatus(tree_name, None, head(tree_name))
    engine = sa.create_engine(engine_url(settings), poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            found = current(connection, tree_name)
    finally:
        engine.dispose()
    return TreeStatus(tree_name, found, head(tree_name))
