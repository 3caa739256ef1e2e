"""Read one tenant's rows of a dbt mart from whichever warehouse is the target."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
import pyarrow as pa
from psycopg import sql

from core.contracts.serving_tables import contract_for_mart
from core.contracts.table import TableContract
from core.settings import Settings, Target
from lake.duckdb_s3 import connect_warehouse
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)

MART_SCHEMA = "analytics"


def read_mart(settings: Settings, mart: str | TableContract, *, tenant_id: str) -> pa.Table:
    """The tenant's rows of ``mart`` (a dbt model name, or a serving contract).

    For a mart with a serving contract only the contract's columns are read, ordered
    by its primary key; any other mart is read whole, in no particular order.
    """
    return read_mart_tenants(settings, mart, tenant_ids=[tenant_id])


def read_mart_tenants(
    settings: Settings, mart: str | TableContract, *, tenant_ids: Sequence[str]
) -> pa.Table:
    """These tenants' rows of ``mart`` in one read, as ``read_mart`` reads one's (a
    batch's checks read each mart once, not once per tenant)."""
    contract = mart if isinstance(mart, TableContract) else contract_for_mart(mart)
    name = contract.mart if contract else str(mart)
    columns = contract.columns if contract else None
    order = contract.primary_key if contract else ()
    ids = list(dict.fromkeys(tenant_ids))
    if not ids:
        raise ValueError(f"read_mart_tenants({name}): no tenant given")
    if settings.target is Target.POSTGRES:
        query = sql.SQL("SELECT {cols} FROM {table} WHERE tenant_id = ANY(%s){order}").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*"),
            table=sql.Identifier(MART_SCHEMA, name),
            order=sql.SQL(" ORDER BY ") + sql.SQL(", ").join(map(sql.Identifier, order))
            if order
            else sql.SQL(""),
        )
        with psycopg.connect(settings.postgres_url) as conn:
            cursor = conn.execute(query, [ids])
            rows = cursor.fetchall()
            names = [c.name for c in cursor.description or []]
        # Column-wise, so a tenant with no rows still yields the mart's columns.
        return pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)})
    cols = ", ".join(map(_quote, columns)) if columns else "*"
    order_by = f" ORDER BY {', '.join(map(_quote, order))}" if order else ""
    placeholders = ", ".join("?" for _ in ids)
    # DuckDB refuses to open a file another process is writing, even read-only:
    # take the writer lock for the moment of the read (warehouse/dbt_runs.py).
    with (
        warehouse_lock(settings, run_id=f"read-{ids[0]}", log=log.info),
        connect_warehouse(settings, read_only=True) as conn,
    ):
        return conn.execute(
            f"SELECT {cols} FROM {MART_SCHEMA}.{_quote(name)} "
            f"WHERE tenant_id IN ({placeholders}){order_by}",
            ids,
        ).to_arrow_table()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mart_row_counts(settings: Settings, mart: str, *, tenant_ids: Sequence[str]) -> dict[str, int]:
    """Rows of ``mart`` per tenant (tenants without rows are left out): what sizes a
    batch's reads before they are made."""
    ids = list(dict.fromkeys(tenant_ids))
    if not ids:
        return {}
    if settings.target is Target.POSTGRES:
        query = sql.SQL(
            "SELECT tenant_id, count(*) FROM {table} WHERE tenant_id = ANY(%s) GROUP BY 1"
        ).format(table=sql.Identifier(MART_SCHEMA, mart))
        with psycopg.connect(settings.postgres_url) as conn:
            return {t: int(n) for t, n in conn.execute(query, [ids]).fetchall()}
    placeholders = ", ".join("?" for _ in ids)
    with (
        warehouse_lock(settings, run_id=f"read-{ids[0]}", log=log.info),
        connect_warehouse(settings, read_only=True) as conn,
    ):
        found = conn.execute(
            f"SELECT tenant_id, count(*) FROM {MART_SCHEMA}.{_quote(mart)} "
            f"WHERE tenant_id IN ({placeholders}) GROUP BY 1",
            ids,
        ).fetchall()
    return {t: int(n) for t, n in found}
