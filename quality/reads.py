"""What the checks read: one tenant's lake table (declared columns only) and one
tenant's rows of a warehouse relation, each once per check run."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from connectors.landing import TableSpec, table_dir
from core.settings import Settings, Target
from quality.source_suites import checked_columns
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)


def read_lake_columns(settings: Settings, spec: TableSpec, tenant_id: str) -> pa.Table:
    """The tenant's landed rows of ``spec``, its declared columns only; empty (with
    the declared columns) when nothing landed. A column a file lacks reads as null."""
    schema = checked_columns(spec)
    folder = table_dir(settings, spec.source, spec.name, tenant_id)
    files = sorted(folder.glob("*=*/part.parquet")) if folder.exists() else []
    parts = []
    for path in files:
        handle = pq.ParquetFile(path)
        present = [n for n in schema.names if n in handle.schema_arrow.names]
        part = handle.read(columns=present)
        for name in schema.names:
            if name not in present:
                part = part.append_column(name, pa.nulls(part.num_rows, schema.field(name).type))
        # Keep the file's own types: a column whose files disagree is what the
        # type expectation is there to see.
        parts.append(part.select(schema.names))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts, promote_options="permissive")


def read_relation(
    settings: Settings, schema: str, name: str, columns: Sequence[str], *, tenant_id: str
) -> pa.Table:
    """``columns`` of the tenant's rows of warehouse relation ``schema.name``."""
    if settings.target is Target.POSTGRES:
        query = sql.SQL("SELECT {cols} FROM {table} WHERE tenant_id = %s").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            table=sql.Identifier(schema, name),
        )
        with psycopg.connect(settings.postgres_url) as conn:
            cursor = conn.execute(query, [tenant_id])
            rows = cursor.fetchall()
        return pa.table({c: [row[i] for row in rows] for i, c in enumerate(columns)})
    cols = ", ".join(_quote(c) for c in columns)
    # DuckDB refuses to open a file another process is writing: take the writer
    # lock for the moment of the read, as warehouse.marts does.
    with (
        warehouse_lock(settings, run_id=f"check-{tenant_id}", log=log.info),
        duckdb.connect(str(settings.warehouse_path), read_only=True) as conn,
    ):
        return conn.execute(
            f"SELECT {cols} FROM {_quote(schema)}.{_quote(name)} WHERE tenant_id = ?",
            [tenant_id],
        ).to_arrow_table()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
