"""Load lake partitions into the Postgres ``raw`` schema, dbt's sources there.

On the embedded target dbt reads the lake Parquet directly; on Postgres the same
rows are copied into ``raw.<table>``, one tenant at a time, replacing that
tenant's rows in one transaction so dbt never sees a half-loaded tenant.
"""

from __future__ import annotations

import psycopg
import pyarrow as pa
from psycopg import sql

_PG_TYPES = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
}


def pg_type(arrow_type: pa.DataType) -> str:
    try:
        return _PG_TYPES[arrow_type]
    except KeyError:
        raise TypeError(f"no Postgres type mapped for Arrow type {arrow_type}") from None


def replace_tenant_rows(
    conninfo: str, *, table_name: str, schema: pa.Schema, tenant_id: str, rows: pa.Table
) -> int:
    """Create ``raw.<table_name>`` if needed, then swap in this tenant's rows."""
    target = sql.Identifier("raw", table_name)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type(f.type))) for f in schema
    )
    names = sql.SQL(", ").join(sql.Identifier(f.name) for f in schema)
    rows = rows.select(schema.names).cast(schema)
    with psycopg.connect(conninfo) as conn, conn.transaction():
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, columns))
        conn.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(target), [tenant_id])
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, names)) as copy:
            for record in rows.to_pylist():
                copy.write_row([record[name] for name in schema.names])
    return rows.num_rows
