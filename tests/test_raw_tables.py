"""The lake -> Postgres raw loader on real Postgres: it mirrors a tenant's lake
table, follows schema drift, replaces one tenant without touching another, and
names the file and row of a value Postgres cannot store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.landing import Fetched, land_batch
from connectors.sources import SOURCES
from core.settings import Settings
from exports.crm_leads import LEADS_SCHEMA, leads_path
from lake.files import write_partition
from warehouse.lake_tables import lake_tables
from warehouse.raw_tables import RawLoadError, RawTable, lake_files, load_tenant

pytestmark = pytest.mark.postgres

CUSTOMERS = next(t for t in lake_tables() if t.name == "stripe__customers")
LEADS = next(t for t in lake_tables() if t.name == "crm_export__leads")
SPEC = SOURCES["stripe"].tables["customers"]
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def customer(n: int, **extra: object) -> dict:
    return {
        "id": f"cus_{n}",
        "object": "customer",
        "created": 1714000000 + n,
        "email": f"c{n}@example.com",
        "livemode": False,
        **extra,
    }


def land(settings: Settings, tenant: str, records: list[dict], run: str = "run-1") -> None:
    batch = [Fetched(r, origin="GET /v1/customers", position=i) for i, r in enumerate(records)]
    land_batch(settings, SPEC, tenant_id=tenant, batch=batch, run_id=run, now=NOW)


def load(settings: Settings, pg_url: str, table: RawTable, tenant: str) -> int:
    return load_tenant(pg_url, table, lake_dir=settings.lake_dir, tenant_id=tenant).rows


def raw_rows(pg_url: str, query: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(query).fetchall()


def test_mirrors_each_tenant_and_replaces_only_that_tenant(settings: Settings, pg_url: str) -> None:
    land(settings, "acme", [customer(1), customer(2)])
    land(settings, "globex", [customer(1)])
    assert load(settings, pg_url, CUSTOMERS, "acme") == 2
    assert load(settings, pg_url, CUSTOMERS, "globex") == 1

    # acme's customer 2 changes; a re-load replaces acme's rows, no duplicate,
    # and globex's row stays as it was
    land(settings, "acme", [customer(2, email="new@example.com")], run="run-2")
    assert load(settings, pg_url, CUSTOMERS, "acme") == 2
    assert load(settings, pg_url, CUSTOMERS, "acme") == 2

    rows = raw_rows(
        pg_url, "select tenant_id, id, email, _run_id from raw.stripe__customers order by 1, 2"
    )
    assert rows == [
        ("acme", "cus_1", "c1@example.com", "run-1"),
        ("acme", "cus_2", "new@example.com", "run-2"),
        ("globex", "cus_1", "c1@example.com", "run-1"),
    ]


def test_types_come_from_the_lake_schema_and_new_columns_are_added(
    settings: Settings, pg_url: str
) -> None:
    land(settings, "acme", [customer(1, balance=0, metadata={"k": "v"})])
    load(settings, pg_url, CUSTOMERS, "acme")
    # the provider starts sending a new field, and an old one changes type
    land(settings, "acme", [customer(2, balance="n/a", tax_exempt="none")], run="run-2")
    result = load_tenant(pg_url, CUSTOMERS, lake_dir=settings.lake_dir, tenant_id="acme")

    assert result.columns_added == ["tax_exempt"]
    types = dict(
        raw_rows(
            pg_url,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'stripe__customers'",
        )
    )
    assert types["created"] == "bigint"
    assert types["livemode"] == "boolean"
    assert types["_ingested_at"] == "timestamp with time zone"
    assert types["metadata"] == "text"  # nested objects land as JSON text
    assert types["balance"] == "text"  # an int that drifted to text keeps every value
    rows = raw_rows(pg_url, "select id, balance, tax_exempt from raw.stripe__customers order by 1")
    assert rows == [("cus_1", "0", None), ("cus_2", "n/a", "none")]


def test_a_table_no_tenant_loaded_is_created_empty_with_its_declared_columns(
    settings: Settings, pg_url: str
) -> None:
    assert load(settings, pg_url, CUSTOMERS, "acme") == 0
    columns = raw_rows(
        pg_url,
        "select column_name from information_schema.columns where table_schema = 'raw' "
        "and table_name = 'stripe__customers' order by ordinal_position",
    )
    assert [c for (c,) in columns] == CUSTOMERS.declared.names


def test_a_nul_byte_is_quarantined_at_landing_and_refused_by_the_raw_load(
    settings: Settings, pg_url: str
) -> None:
    # Landing keeps NUL out of the lake (Postgres cannot store it), so the tenant loads.
    land(settings, "acme", [customer(1), customer(2, name="Ann\x00Lee")])
    assert load(settings, pg_url, CUSTOMERS, "acme") == 1
    # A lake file that holds one all the same (written before landing checked, or by
    # hand) stops the raw load, naming where, and leaves the raw rows as they were.
    (path,) = lake_files(settings.lake_dir, "stripe", "customers", "acme")
    landed = pq.read_table(path)
    names = pa.array(["Ann\x00Lee"], type=pa.string())
    write_partition(landed.append_column("name", names), path)
    with pytest.raises(RawLoadError) as caught:
        load(settings, pg_url, CUSTOMERS, "acme")
    message = str(caught.value)
    assert "raw.stripe__customers" in message and "tenant acme" in message
    assert "column 'name'" in message and "NUL" in message
    assert "part.parquet" in message and "'cus_1'" in message
    assert raw_rows(pg_url, "select id, email from raw.stripe__customers") == [
        ("cus_1", "c1@example.com")
    ]


def test_a_nul_byte_in_an_export_row_names_the_export_file_and_line(
    settings: Settings, pg_url: str
) -> None:
    row = dict.fromkeys(LEADS_SCHEMA.names)
    row.update(
        tenant_id="acme",
        lead_id="L1",
        email="a@b.co",
        company="Ac\x00me",
        status="new",
        created_at=NOW,
        _source_file="inbox/acme/crm/export.csv",
        _source_line=7,
        _ingested_at=NOW,
    )
    write_partition(pa.Table.from_pylist([row], schema=LEADS_SCHEMA), leads_path(settings, "acme"))
    with pytest.raises(RawLoadError, match=r"export\.csv, line 7"):
        load(settings, pg_url, LEADS, "acme")


def test_a_row_of_another_tenant_is_refused(
    settings: Settings, pg_url: str, tmp_path: Path
) -> None:
    land(settings, "globex", [customer(1)])
    # a file copied into the wrong tenant's folder
    wrong = settings.lake_dir / "stripe" / "customers" / "tenant=acme" / "month=2024-04"
    wrong.mkdir(parents=True)
    source = next((settings.lake_dir / "stripe" / "customers" / "tenant=globex").rglob("*.parquet"))
    (wrong / "part.parquet").write_bytes(source.read_bytes())
    with pytest.raises(RawLoadError, match="belongs to tenant 'globex'"):
        load(settings, pg_url, CUSTOMERS, "acme")
