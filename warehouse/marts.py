"""Read one tenant's rows of a dbt mart from whichever warehouse is the target."""

from __future__ import annotations

import logging

import duckdb
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.rows import dict_row

from core.settings import Settings, Target
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)

MART_SCHEMA = "analytics"


def read_mart(settings: Settings, mart: str, *, tenant_id: str) -> pa.Table:
    if settings.target is Target.POSTGRES:
        query = sql.SQL("SELECT * FROM {} WHERE tenant_id = %s ORDER BY lead_id").format(
            sql.Identifier(MART_SCHEMA, mart)
        )
        with psycopg.connect(settings.postgres_url, row_factory=dict_row) as conn:
            cursor = conn.execute(query, [tenant_id])
            rows = cursor.fetchall()
            names = [c.name for c in cursor.description or []]
        # Column-wise, so a tenant with no rows still yields the mart's columns.
        return pa.table({name: [row[name] for row in rows] for name in names})
    # DuckDB refuses to open a file another process is writing, even read-only:
    # take the writer lock for the moment of the read (warehouse/dbt_runs.py).
    with (
        warehouse_lock(settings, run_id=f"read-{tenant_id}", log=log.info),
        duckdb.connect(str(settings.warehouse_path), read_only=True) as conn,
    ):
        return conn.execute(
            f'SELECT * FROM {MART_SCHEMA}."{mart}" WHERE tenant_id = ? ORDER BY lead_id',
            [tenant_id],
        ).to_arrow_table()
