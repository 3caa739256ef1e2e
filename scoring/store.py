"""Where the lead model meets the warehouse: it reads the dbt feature models and
writes its tables to schema ``lead_model``, which dbt reads back as sources.

Every table has a ``tenant_id`` column and a tenant's rows are replaced in one
transaction (delete, then insert), so a rerun never duplicates and never
touches another tenant. The column lists here are the dbt sources' columns
(dbt/models/marts/leads/_lead_model__sources.yml); a test keeps the two equal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import polars as pl
import psycopg
from psycopg import sql

from core.settings import Settings, Target
from core.tenancy import check_tenant_id
from lake.duckdb_s3 import connect_warehouse
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)

SCHEMA = "lead_model"
INTERMEDIATE_SCHEMA = "intermediate"

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "models": (
        ("tenant_id", "text"),
        ("model_version", "text"),
        ("model_kind", "text"),
        ("config_version", "text"),
        ("trained_at", "timestamp with time zone"),
        ("reason", "text"),
        ("intercept", "double precision"),
        ("base_score", "integer"),
        ("labels_positive", "integer"),
        ("labels_negative", "integer"),
        ("labels_open", "integer"),
        ("labels_used", "integer"),
        ("train_rows", "integer"),
        ("holdout_rows", "integer"),
        ("holdout_positives", "integer"),
        ("auc", "double precision"),
        ("log_loss", "double precision"),
        ("calibration_error", "double precision"),
        ("rules_auc", "double precision"),
        ("rules_log_loss", "double precision"),
        ("rules_calibration_error", "double precision"),
        ("grade_a", "integer"),
        ("grade_b", "integer"),
        ("grade_c", "integer"),
        ("mql_threshold", "integer"),
        ("run_id", "text"),
    ),
    "features": (
        ("tenant_id", "text"),
        ("model_version", "text"),
        ("feature", "text"),
        ("kind", "text"),
        ("source_column", "text"),
        ("coefficient", "double precision"),
        ("mean", "double precision"),
        ("scale", "double precision"),
    ),
    "custom_attributes": (
        ("tenant_id", "text"),
        ("attribute", "text"),
        ("decision", "text"),
        ("reason", "text"),
    ),
    "calibration": (
        ("tenant_id", "text"),
        ("model_version", "text"),
        ("scorer", "text"),
        ("decile", "integer"),
        ("leads", "integer"),
        ("mean_predicted", "double precision"),
        ("observed_rate", "double precision"),
    ),
    "predictions": (
        ("tenant_id", "text"),
        ("lead_id", "text"),
        ("model_version", "text"),
        ("score_status", "text"),
        ("probability", "double precision"),
        ("score", "integer"),
        ("base_score", "integer"),
        ("fit_score", "integer"),
        ("engagement_score", "integer"),
    ),
    "contributions": (
        ("tenant_id", "text"),
        ("lead_id", "text"),
        ("feature", "text"),
        ("kind", "text"),
        ("label", "text"),
        ("value", "double precision"),
        ("contribution", "double precision"),
        ("points", "integer"),
        ("evidence_ref", "text"),
    ),
}

POLARS_TYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "double precision": pl.Float64(),
    "integer": pl.Int32(),
    "timestamp with time zone": pl.Datetime("us", "UTC"),
}


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly the table's columns, in order and typed; a missing column
    is a bug in the caller, so it raises naming the column."""
    columns = TABLES[table]
    missing = [c for c, _ in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"lead_model.{table}: missing columns {missing}")
    return frame.select([pl.col(c).cast(POLARS_TYPES[t]) for c, t in columns])


def _ddl(table: str) -> str:
    cols = ", ".join(f'"{c}" {t}' for c, t in TABLES[table])
    return f'CREATE TABLE IF NOT EXISTS {SCHEMA}."{table}" ({cols})'


def read_inputs(settings: Settings, tenant_ids: Iterable[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``int_leads_labelled`` and ``int_lead_touches`` rows of the given tenants."""
    tenants = [check_tenant_id(t) for t in tenant_ids]
    queries = (
        f"SELECT * FROM {INTERMEDIATE_SCHEMA}.int_leads_labelled WHERE tenant_id = ANY(%s)"
        " ORDER BY tenant_id, lead_id",
        "SELECT tenant_id, lead_id, touch_type, touch_date, touches, evidence_ref"
        f" FROM {INTERMEDIATE_SCHEMA}.int_lead_touches WHERE tenant_id = ANY(%s)"
        " ORDER BY tenant_id, lead_id, touch_type, touch_date",
    )
    frames = []
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url) as conn:
            for query in queries:
                cursor = conn.execute(query, [tenants])
                names = [c.name for c in cursor.description or []]
                rows = cursor.fetchall()
                frames.append(
                    pl.DataFrame(
                        {n: [r[i] for r in rows] for i, n in enumerate(names)}, strict=False
                    )
                )
    else:
        with (
            warehouse_lock(settings, run_id=f"lead-model-read-{tenants[0]}", log=log.info),
            connect_warehouse(settings, read_only=True) as conn,
        ):
            for query in queries:
                duck_query = query.replace("tenant_id = ANY(%s)", "list_contains(?, tenant_id)")
                frames.append(conn.execute(duck_query, [tenants]).pl())
    leads, touches = frames
    return _typed_leads(leads), _typed_touches(touches)


def _no_null_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns read from Postgres with no rows (or only nulls) come back untyped: text."""
    return frame.with_columns(pl.col(pl.Null).cast(pl.String))


def _typed_leads(frame: pl.DataFrame) -> pl.DataFrame:
    frame = _no_null_columns(frame)
    return frame.with_columns(
        pl.col("label").cast(pl.Int32),
        pl.col("rules_score_without_status").cast(pl.Int32),
        pl.col("is_free_mail").cast(pl.Boolean),
        *(pl.col(c).cast(pl.Datetime("us", "UTC")) for c in ("created_at", "features_as_of")),
    )


def _typed_touches(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.is_empty():
        return pl.DataFrame(
            schema={
                "tenant_id": pl.String,
                "lead_id": pl.String,
                "touch_type": pl.String,
                "touch_date": pl.Date,
                "touches": pl.Int64,
                "evidence_ref": pl.String,
            }
        )
    frame = _no_null_columns(frame)
    return frame.with_columns(pl.col("touch_date").cast(pl.Date), pl.col("touches").cast(pl.Int64))


def write_outputs(settings: Settings, tenant_id: str, tables: dict[str, pl.DataFrame]) -> None:
    """Replace the tenant's rows of every lead_model table in one transaction."""
    tenant_id = check_tenant_id(tenant_id)
    conformed = {name: conform(name, tables.get(name, _empty(name))) for name in TABLES}
    for name, frame in conformed.items():
        others = frame.filter(pl.col("tenant_id") != tenant_id).height
        if others:
            raise ValueError(
                f"lead_model.{name}: {others} rows of another tenant in {tenant_id}'s write"
            )
    if settings.target is Target.POSTGRES:
        _write_postgres(settings, tenant_id, conformed)
    else:
        with warehouse_lock(settings, run_id=f"lead-model-{tenant_id}", log=log.info):
            _write_duckdb(settings, tenant_id, conformed)


def _empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema={c: POLARS_TYPES[t] for c, t in TABLES[name]})


def _write_duckdb(settings: Settings, tenant_id: str, tables: dict[str, pl.DataFrame]) -> None:
    with connect_warehouse(settings) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for name in tables:
            conn.execute(_ddl(name))
        conn.execute("BEGIN TRANSACTION")
        try:
            for name, frame in tables.items():
                conn.execute(f'DELETE FROM {SCHEMA}."{name}" WHERE tenant_id = ?', [tenant_id])
                if frame.height:
                    arrow = frame.to_arrow()  # noqa: F841 - read by name in the SQL below
                    conn.execute(f'INSERT INTO {SCHEMA}."{name}" SELECT * FROM arrow')
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _write_postgres(settings: Settings, tenant_id: str, tables: dict[str, pl.DataFrame]) -> None:
    with psycopg.connect(settings.postgres_url) as conn:
        # two first runs at once would both create the schema: one waits for the other
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('bizos.lead_model.ddl'))")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for name in tables:
            conn.execute(_ddl(name))
        for name, frame in tables.items():
            table = sql.Identifier(SCHEMA, name)
            conn.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(table), [tenant_id])
            if not frame.height:
                continue
            cols = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)) as copy:
                for row in frame.iter_rows():
                    copy.write_row(row)
        conn.commit()


def read_tenant_rows(
    settings: Settings, schema: str, table: str, tenant_ids: Iterable[str] | None = None
) -> pl.DataFrame:
    """Rows of ``schema.table`` (a lead_model table or a mart) for the given tenants, or
    all; an absent table reads as no rows (no model has run yet)."""
    tenants = [check_tenant_id(t) for t in tenant_ids] if tenant_ids is not None else None
    if settings.target is Target.POSTGRES:
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table))
        params: list[object] = []
        if tenants is not None:
            query = query + sql.SQL(" WHERE tenant_id = ANY(%s)")
            params = [tenants]
        with psycopg.connect(settings.postgres_url) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", [f'"{schema}"."{table}"']).fetchone()
            if not exists or exists[0] is None:
                return pl.DataFrame()
            cursor = conn.execute(query, params)
            names = [c.name for c in cursor.description or []]
            rows = cursor.fetchall()
        return pl.DataFrame({n: [r[i] for r in rows] for i, n in enumerate(names)}, strict=False)
    if not settings.warehouse_path.exists():
        return pl.DataFrame()
    with (
        warehouse_lock(settings, run_id=f"read-{schema}.{table}", log=log.info),
        connect_warehouse(settings, read_only=True) as conn,
    ):
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()
        if not found or not found[0]:
            return pl.DataFrame()
        select = f'SELECT * FROM "{schema}"."{table}"'
        if tenants is not None:
            return conn.execute(select + " WHERE list_contains(?, tenant_id)", [tenants]).pl()
        return conn.execute(select).pl()
