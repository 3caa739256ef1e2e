"""Embedded serving store: one Parquet file per table per tenant, and a views-only DuckDB file.

Layout under ``settings.serving_dir``::

    <table>/tenant=<id>.parquet   the tenant's rows of one table, sorted in API order
    publish_log.jsonl             one line per publish (table, tenant, rows, time)
    serving.duckdb                views over the files, for Superset and analysts

Publishing a tenant writes its file beside the live one and ``os.replace``s it over;
the rename is atomic, so a reader opens the old inode or the new one, never half of
either, and keeps the inode it opened. Nothing else is read or written: the cost is
the tenant's rows, other tenants' files keep their bytes and mtimes, other tables
are not touched. Publishes of one tenant and table are serialized by a ``flock`` on
a lock file beside it; different tenants never wait for each other.

``serving.duckdb`` holds only views (``read_parquet`` over ``<table>/tenant=*.parquet``),
one per table directory that holds files. It is rebuilt (beside, then renamed) only
when a table appears that it has no view for, so no publish can drop another table.

The API reads just the tenant's file: opened once, so the whole read sees one version
even when a publish renames a new file over it mid-read.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from core.contracts.table import PUBLISHED_AT, TableContract
from core.settings import Settings, Target
from serving.store import (
    NothingPublished,
    PublishResult,
    Row,
    StoreUnavailable,
    key_filter,
    order_clause,
    quote,
    row_filter,
    select_list,
)

log = logging.getLogger(__name__)

VIEWS_FILE = "serving.duckdb"
PUBLISH_LOG = "publish_log.jsonl"
_VIEWS_LOCK = ".views.lock"
# How far back /ready looks in the log for the latest publish.
_LOG_TAIL_BYTES = 64 * 1024

_views_current: set[tuple[Path, str]] = set()
_views_current_lock = threading.Lock()


ROW_GROUP_ROWS = 4096
"""Rows per row group of a tenant's served file."""


def tenant_file(serving_dir: Path, table: str, tenant_id: str) -> Path:
    return serving_dir / table / f"tenant={tenant_id}.parquet"


def _sql_string(value: str) -> str:
    """A SQL string literal, for paths in DDL (which takes no bound parameters)."""
    return "'" + value.replace("'", "''") + "'"


class DuckDBStore:
    """Serving store in ``settings.serving_dir``; see the module docstring."""

    kind = Target.DUCKDB

    def __init__(self, settings: Settings) -> None:
        self._dir = settings.serving_dir
        self.views_path = self._dir / VIEWS_FILE
        self.log_path = self._dir / PUBLISH_LOG

    # -- publish -----------------------------------------------------------------

    def publish(
        self, contract: TableContract, *, tenant_id: str, table: pa.Table | pa.RecordBatchReader
    ) -> PublishResult:
        rows = contract.conform(tenant_id, table)
        live = tenant_file(self._dir, contract.name, tenant_id)
        live.parent.mkdir(parents=True, exist_ok=True)
        with _flock(live.with_name(f".{live.name}.lock")):
            _sweep_leftovers(live)
            published_at = datetime.now(UTC)
            replaced = pq.read_metadata(live).num_rows if live.exists() else 0
            served = _served(contract, rows, published_at)
            next_path = live.with_name(f".{live.name}.next-{uuid.uuid4().hex}")
            try:
                # Sorted in API order, so a page is the file's head and row-group
                # statistics let range filters skip most of it; row groups small
                # enough that a read of one row beyond the API's copies budget
                # decodes one group, not the file (serving/readers.py, _read_row).
                pq.write_table(served, next_path, row_group_size=ROW_GROUP_ROWS)
                with open(next_path, "rb") as written:
                    os.fsync(written.fileno())
                os.replace(next_path, live)
            except BaseException:
                with suppress(FileNotFoundError):
                    next_path.unlink()
                raise
            _fsync_dir(live.parent)
            self._append_log(contract.name, tenant_id, rows.num_rows, replaced, published_at)
        self._ensure_view(contract.name)
        log.info(
            "published %d rows of %s for tenant %s (%d replaced)",
            rows.num_rows,
            contract.name,
            tenant_id,
            replaced,
        )
        return PublishResult(
            table=contract.name,
            tenant_id=tenant_id,
            rows=rows.num_rows,
            rows_replaced=replaced,
            published_at=published_at,
        )

    def _append_log(
        self, table: str, tenant_id: str, rows: int, replaced: int, published_at: datetime
    ) -> None:
        line = json.dumps(
            {
                "table_name": table,
                "tenant_id": tenant_id,
                "rows": rows,
                "rows_replaced": replaced,
                "published_at": published_at.isoformat(),
            },
            separators=(",", ":"),
        )
        # One write of one short line with O_APPEND: concurrent publishers of other
        # tenants append whole lines, never interleaved bytes.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _ensure_view(self, table: str) -> None:
        """Make sure ``serving.duckdb`` has a view for ``table``; rebuild it if not."""
        key = (self._dir, table)
        with _views_current_lock:
            if key in _views_current:
                return
        with _flock(self._dir / _VIEWS_LOCK):
            if not self._views_cover(table):
                self._rebuild_views()
        with _views_current_lock:
            _views_current.add(key)

    def _views_cover(self, table: str) -> bool:
        if not self.views_path.exists():
            return False
        try:
            with _attached(self.views_path) as con:
                found = con.execute(
                    "SELECT sql FROM duckdb_views() WHERE database_name = 'views'"
                    " AND view_name = ?",
                    [table],
                ).fetchone()
        except duckdb.Error:
            return False  # not ours (an older store's file, or garbage): rebuild
        # The view names absolute paths: a moved BIZOS_HOME needs new views.
        return found is not None and str(self._dir / table) in found[0]

    def _rebuild_views(self) -> None:
        """Write a views file for every table with files, beside the live one, then rename."""
        next_path = self._dir / f".{VIEWS_FILE}.next-{uuid.uuid4().hex}"
        tables = sorted(
            d.name for d in self._dir.iterdir() if d.is_dir() and any(d.glob("tenant=*.parquet"))
        )
        try:
            con = duckdb.connect(str(next_path))
            try:
                for name in tables:
                    files = _sql_string(str(self._dir / name / "tenant=*.parquet"))
                    con.execute(
                        f"CREATE VIEW {quote(name)} AS SELECT * FROM read_parquet({files},"
                        " union_by_name = true, hive_partitioning = false)"
                    )
                if self.log_path.exists():
                    con.execute(
                        "CREATE VIEW publish_log AS SELECT * FROM read_json("
                        f"{_sql_string(str(self.log_path))}, format = 'newline_delimited',"
                        " columns = {table_name: 'VARCHAR', tenant_id: 'VARCHAR',"
                        " rows: 'BIGINT', rows_replaced: 'BIGINT', published_at: 'TIMESTAMPTZ'})"
                    )
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(next_path, self.views_path)
        except BaseException:
            for leftover in (next_path, next_path.with_name(next_path.name + ".wal")):
                with suppress(FileNotFoundError):
                    leftover.unlink()
            raise
        _fsync_dir(self._dir)
        log.info("rebuilt %s with views %s", VIEWS_FILE, tables)

    # -- reads -------------------------------------------------------------------

    def _tenant_rows(self, contract: TableContract, tenant_id: str) -> pa.Table | None:
        """The tenant's file, read through one open descriptor; None if it has none."""
        path = tenant_file(self._dir, contract.name, tenant_id)
        try:
            with open(path, "rb") as fh:
                return pq.read_table(fh)
        except FileNotFoundError:
            table_dir = path.parent
            if not (table_dir.is_dir() and any(table_dir.glob("tenant=*.parquet"))):
                raise NothingPublished(
                    f"nothing has been published to {contract.name} yet"
                ) from None
            return None
        except (OSError, pa.ArrowException) as exc:
            raise StoreUnavailable(f"cannot read {contract.name}/{path.name}: {exc}") from exc

    def _query(
        self, contract: TableContract, tenant_id: str, where: str, params: dict[str, object]
    ) -> list[Row]:
        rows = self._tenant_rows(contract, tenant_id)
        if rows is None:
            return []
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("tenant_rows", rows)
            result = con.execute(
                f"SELECT {select_list(contract)} FROM tenant_rows WHERE {where}", params
            )
            names = [d[0] for d in result.description or []]
            return [dict(zip(names, values, strict=True)) for values in result.fetchall()]
        finally:
            con.close()

    def list_rows(
        self,
        contract: TableContract,
        *,
        tenant_id: str,
        equals: Mapping[str, object] | None = None,
        at_least: Mapping[str, object] | None = None,
        after: Sequence[object] | None = None,
        limit: int,
    ) -> list[Row]:
        where, params = row_filter(
            contract,
            tenant_id=tenant_id,
            equals=equals,
            at_least=at_least,
            after=after,
            placeholder=_placeholder,
        )
        where += f" ORDER BY {order_clause(contract)} LIMIT $limit"
        return self._query(contract, tenant_id, where, {**params, "limit": limit})

    def get_row(
        self, contract: TableContract, *, tenant_id: str, key: Mapping[str, object]
    ) -> Row | None:
        where, params = key_filter(contract, tenant_id=tenant_id, key=key, placeholder=_placeholder)
        found = self._query(contract, tenant_id, where, params)
        return found[0] if found else None

    def last_published_at(self) -> datetime:
        try:
            with open(self.log_path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - _LOG_TAIL_BYTES))
                tail = fh.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            raise NothingPublished("nothing has been published to the embedded store yet") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {PUBLISH_LOG}: {exc}") from exc
        times = []
        # The first line of a tail may be cut; a line being appended may be short.
        for line in tail[1:] if size > _LOG_TAIL_BYTES else tail:
            with suppress(ValueError, KeyError, TypeError):
                times.append(datetime.fromisoformat(json.loads(line)["published_at"]))
        if not times:
            raise StoreUnavailable(f"{PUBLISH_LOG} holds no readable publish")
        return max(times)


def _served(contract: TableContract, rows: pa.Table, published_at: datetime) -> pa.Table:
    """The conformed rows plus ``published_at``, in the contract's order."""
    stamped = rows.append_column(
        contract.served_schema.field(PUBLISHED_AT),
        pa.array([published_at] * rows.num_rows, type=pa.timestamp("us", tz="UTC")),
    )
    if not stamped.num_rows:
        return stamped
    sort_keys = [
        (c, "descending" if contract.descending(c) else "ascending") for c in contract.order_columns
    ]
    return stamped.sort_by(sort_keys)


def _sweep_leftovers(live: Path) -> None:
    """Remove next files a killed publish of this tenant left; we hold its lock."""
    for leftover in live.parent.glob(f".{live.name}.next-*"):
        with suppress(FileNotFoundError):
            leftover.unlink()
            log.info("removed %s left by an interrupted publish", leftover.name)


def _placeholder(name: str) -> str:
    return f"${name}"


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes.

    flock locks belong to the open file description, so threads that open the lock
    file separately exclude each other too.
    """
    with open(path, "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


@contextmanager
def _attached(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """``path`` attached read-only as ``views`` in a private in-memory database.

    Not ``duckdb.connect(path)``: DuckDB caches database instances by path within a
    process, and a cached instance would keep serving a replaced file.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_sql_string(str(path))} AS views (READ_ONLY)")
        yield con
    finally:
        con.close()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable, not just the file contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
