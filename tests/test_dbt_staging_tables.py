"""Staging on DuckDB: tables replaced tenant by tenant (dbt/macros/staging/
staging_table.sql), built for real by dbt over a lake of CRM exports.

Apart from tests/test_dbt_project.py so the suite's workers run it beside that
module's builds (pytest-xdist hands out whole files)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from core.settings import Settings
from exports.crm_leads import leads_path
from tests.test_dbt_project import dbt_build, known_leads, write_lake


def test_duckdb_staging_tables_read_and_replace_only_the_runs_tenants(
    settings: Settings, tmp_path: Path
) -> None:
    """On DuckDB a staging model is a table, replaced tenant by tenant
    (dbt/macros/staging/staging_table.sql), so a tenant's build reads its own lake
    files only, however many tenants the lake holds:

    - a tenant's build never opens another tenant's files (here: one broken file);
    - it replaces that tenant's rows, and keeps the others' as their last build left them;
    - a tenant whose files are gone is left with no rows;
    - a table built by other SQL (its comment says which) is rebuilt whole."""
    select = ("--select", "stg_crm_export__leads")
    target = tmp_path / "dbt"

    def staged() -> dict[tuple[str, str], str]:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            rows = conn.execute(
                "select tenant_id, lead_id, status from staging.stg_crm_export__leads"
            ).fetchall()
        return {(t, lead_id): status for t, lead_id, status in rows}

    def with_status(rows: list[dict], tenant: str, lead_id: str, status: str) -> list[dict]:
        return [
            {**r, "status": status} if (r["tenant_id"], r["lead_id"]) == (tenant, lead_id) else r
            for r in rows
        ]

    rows = known_leads()
    write_lake(settings, rows)
    dbt_build(settings, target, *select)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        (kind,) = conn.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'staging' and table_name = 'stg_crm_export__leads'"
        ).fetchone()
    assert kind == "BASE TABLE"
    first = staged()
    assert first[("t1", "A-4")] == "unqualified" and first[("t2", "G-2")] == "new"

    # t1's A-4 moves on; t2's file is broken, and t1's build must not open it.
    write_lake(
        settings, with_status([r for r in rows if r["tenant_id"] == "t1"], "t1", "A-4", "qualified")
    )
    leads_path(settings, "t2").write_bytes(b"not a parquet file")
    dbt_build(settings, target, *select, tenant="t1")
    after = staged()
    assert after[("t1", "A-4")] == "qualified"
    assert {k: v for k, v in after.items() if k[0] == "t2"} == {
        k: v for k, v in first.items() if k[0] == "t2"
    }

    # t1's file is gone: so are its rows; t2's stay.
    leads_path(settings, "t1").unlink()
    dbt_build(settings, target, *select, tenant="t1")
    assert {t for t, _ in staged()} == {"t2"}

    # A table built by other SQL (an older release) is rebuilt whole, every tenant read.
    write_lake(
        settings, with_status([r for r in rows if r["tenant_id"] == "t2"], "t2", "G-2", "qualified")
    )
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("comment on table staging.stg_crm_export__leads is 'staging-v0:older'")
    dbt_build(settings, target, *select, tenant="t1")
    rebuilt = staged()
    assert rebuilt[("t2", "G-2")] == "qualified"
    assert {t for t, _ in rebuilt} == {"t2"}
