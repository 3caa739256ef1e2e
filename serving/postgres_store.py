"""Postgres serving store: one table per contract in schema ``serving``, behind RLS.

Publish replaces one tenant's rows of one table in one transaction: DELETE the
tenant's rows, COPY the new ones in, append to the publish log, commit. Its cost is
the tenant's rows (an index range on the primary key, which starts with
``tenant_id``), never the table's. Readers see all-old or all-new: every API read is
one statement, and under MVCC a statement's snapshot holds either none or all of a
committed transaction. Other tenants' rows are neither read nor rewritten, and no
DDL runs at publish, so no lock stronger than ROW EXCLUSIVE is taken and readers of
every tenant keep reading during a publish.

Tables are made by the Alembic ``serving`` tree (migrations/serving), never here:
the store calls ``ensure_current`` first, which upgrades a database that is behind
and refuses one that is ahead.

Readers never query as the owner: each request runs in a transaction that does
``SET LOCAL ROLE bizos_reader`` and sets ``bizos.tenant_id``, so the RLS policy
keeps tenants apart even if a query forgot its ``WHERE tenant_id``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy.exc
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from core.contracts.table import PUBLISHED_AT, TableContract
from core.settings import Settings, Target
from migrations import SchemaAhead, ensure_current
from serving.store import (
    NothingPublished,
    PublishResult,
    Row,
    StoreUnavailable,
    key_filter,
    order_clause,
    row_filter,
    select_list,
)

log = logging.getLogger(__name__)

SCHEMA = "serving"
READER_ROLE = "bizos_reader"
TENANT_SETTING = "bizos.tenant_id"
# Publishes of the same tenant and table are serialized by an advisory lock on this
# key plus the table and tenant; different tenants or tables never wait for each other.
PUBLISH_LOCK = "bizos.serving.publish"

# How each Arrow type of a contract is stored; the migration test holds the migrated
# tables to this mapping.
POSTGRES_TYPES: dict[pa.DataType, str] = {
    pa.string(): "text",
    pa.large_string(): "text",
    pa.int16(): "smallint",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.timestamp("us", tz="UTC"): "timestamp with time zone",
}


def postgres_type(field: pa.Field) -> str:
    try:
        return POSTGRES_TYPES[field.type]
    except KeyError:
        raise TypeError(f"no Postgres type for {field.name}: {field.type}") from None


COPY_BATCH_ROWS = 50_000


def csv_chunks(rows: pa.Table, published_at: datetime) -> Iterator[bytes]:
    """The conformed rows and ``published_at`` as CSV for ``COPY … (FORMAT csv)``,
    a batch of rows at a time.

    Arrow's CSV writer (C++) formats every value; a Python list per row for
    psycopg's ``write_row`` cost 20 µs a row, most of a publish's client time.
    Its output is what Postgres reads back exactly: a null is an empty field and
    an empty string a quoted one (``""``), timestamps carry ``Z``, booleans are
    ``true``/``false``, and the contract's types are all ones it writes.
    """
    stamp = pa.scalar(published_at, type=pa.timestamp("us", tz="UTC"))
    options = pa_csv.WriteOptions(include_header=False)
    for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
        stamped = pa.RecordBatch.from_arrays(
            [*batch.columns, pa.repeat(stamp, batch.num_rows)],
            names=[*batch.schema.names, PUBLISHED_AT],
        )
        buffer = io.BytesIO()
        pa_csv.write_csv(stamped, buffer, options)
        yield buffer.getvalue()


class PostgresStore:
    """Serving store on Postgres; see the module docstring for the publish protocol."""

    kind = Target.POSTGRES

    def __init__(self, settings: Settings, *, pool: ConnectionPool | None = None) -> None:
        self._settings = settings
        self._pool = pool

    # -- connections -------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Migrate the serving tree once per process; refuse a database that is ahead."""
        try:
            ensure_current(self._settings, "serving")
        except SchemaAhead as exc:
            raise StoreUnavailable(str(exc)) from exc
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc

    def _connect(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        if self._pool is not None:
            return self._pool.connection()
        return psycopg.connect(self._settings.postgres_url, connect_timeout=10)

    @contextmanager
    def _reader(self, tenant_id: str) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A cursor inside a transaction that can only see ``tenant_id``'s rows."""
        self._ensure_schema()
        try:
            with self._connect() as conn, conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(READER_ROLE)))
                conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, tenant_id])
                with conn.cursor(row_factory=dict_row) as cur:
                    yield cur
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc

    # -- publish -----------------------------------------------------------------

    def publish(
        self, contract: TableContract, *, tenant_id: str, table: pa.Table | pa.RecordBatchReader
    ) -> PublishResult:
        rows = contract.conform(tenant_id, table)
        try:
            ensure_current(self._settings, "serving")
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc
        target = sql.Identifier(SCHEMA, contract.name)
        columns = sql.SQL(", ").join(map(sql.Identifier, contract.served_columns))
        # Publish uses its own connection, never the API pool: it holds a transaction
        # for as long as the COPY takes and must not starve readers of connections.
        with psycopg.connect(self._settings.postgres_url, connect_timeout=10) as conn:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"{PUBLISH_LOCK}:{contract.name}:{tenant_id}"],
                )
                # Taken once the lock is held: the same instant in every row and the log.
                published_at = datetime.now(UTC)
                replaced = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(target), [tenant_id]
                ).rowcount
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)")
                with (
                    conn.cursor() as cur,
                    cur.copy(copy_sql.format(target, columns)) as copy,
                ):
                    for chunk in csv_chunks(rows, published_at):
                        copy.write(chunk)
                conn.execute(
                    "INSERT INTO serving.publish_log"
                    " (table_name, tenant_id, rows, rows_replaced, published_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [contract.name, tenant_id, rows.num_rows, replaced, published_at],
                )
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

    # -- reads -------------------------------------------------------------------

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
        # tenant_id in the WHERE as well as in RLS: defence in depth, and it lets
        # the planner use the (tenant_id, ...) indexes.
        where, params = row_filter(
            contract,
            tenant_id=tenant_id,
            equals=equals,
            at_least=at_least,
            after=after,
            placeholder=_placeholder,
        )
        query = (
            f"SELECT {select_list(contract)} FROM {SCHEMA}.{contract.name} WHERE {where}"
            f" ORDER BY {order_clause(contract)} LIMIT %(limit)s"
        )
        with self._reader(tenant_id) as cur:
            found = cur.execute(query, {**params, "limit": limit}).fetchall()
        if not found:
            self._raise_if_never_published(contract)
        return found

    def get_row(
        self, contract: TableContract, *, tenant_id: str, key: Mapping[str, object]
    ) -> Row | None:
        where, params = key_filter(contract, tenant_id=tenant_id, key=key, placeholder=_placeholder)
        query = f"SELECT {select_list(contract)} FROM {SCHEMA}.{contract.name} WHERE {where}"
        with self._reader(tenant_id) as cur:
            found = cur.execute(query, params).fetchone()
        if found is None:
            self._raise_if_never_published(contract)
        return found

    def _raise_if_never_published(self, contract: TableContract) -> None:
        """An empty answer from a table nobody has published to is 'not ready', not 'none'.

        Asked only when a read found nothing, so a normal read costs one query.
        """
        if self._last_publish(contract.name) is None:
            raise NothingPublished(f"nothing has been published to {contract.name} yet")

    def _last_publish(self, table_name: str | None) -> datetime | None:
        # Not a tenant read: runs as the connecting role, since the publish log
        # (which names every tenant) is never granted to bizos_reader.
        self._ensure_schema()
        query = "SELECT max(published_at) FROM serving.publish_log"
        params: list[str] = []
        if table_name is not None:
            query += " WHERE table_name = %s"
            params.append(table_name)
        try:
            with self._connect() as conn:
                row = conn.execute(query, params).fetchone()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc
        return None if row is None else row[0]

    def last_published_at(self) -> datetime:
        last = self._last_publish(None)
        if last is None:
            raise NothingPublished("nothing has been published to Postgres yet")
        return last


def _placeholder(name: str) -> str:
    return f"%({name})s"
