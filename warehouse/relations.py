"""Read one tenant's rows of any warehouse relation (a staging table, say) from
whichever warehouse is the target; ``warehouse.marts`` does the same for marts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
import pyarrow as pa
from psycopg import sql

from core.settings import Settings, Target
from lake.duckdb_s3 import connect_warehouse
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)


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
        connect_warehouse(settings, read_only=True) as conn,
    ):
        return conn.execute(
            f"SELECT {cols} FROM {_quote(schema)}.{_quote(name)} WHERE tenant_id = ?",
            [tenant_id],
        ).to_arrow_table()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
