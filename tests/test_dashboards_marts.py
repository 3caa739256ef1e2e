"""The revenue-and-traffic marts (dbt/models/marts/revenue) on sandbox data: built by
dbt on DuckDB from the landed Stripe, GA4 and AI-usage sources, checked against sums
worked out here from the staging rows, and accepted by their serving contracts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date
from decimal import Decimal

import duckdb
import psycopg
import pytest

from core.contracts.revenue_traffic import AI_USAGE_COST, REVENUE_MONTHLY, TRAFFIC_BY_SOURCE
from core.settings import Settings, get_settings
from tests.test_connector_sources import ingest as ingest_source
from tests.test_connector_sources import start as start_sandbox_data
from tests.test_dbt_project import dbt_build, load_raw
from warehouse.marts import read_mart

TENANTS = ("acme", "globex")
SOURCES = ("stripe", "ga4", "ai_usage")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp = tmp_path_factory.mktemp("revenue")
    settings = get_settings(home=tmp / "bizos", database_url=None)
    with start_sandbox_data(tmp, scale=0.02) as sandbox:
        for tenant in TENANTS:
            for source in SOURCES:
                ingest_source(settings, sandbox, source, tenant)
    dbt_build(
        settings,
        settings.home / "dbt-duckdb",
        "--select",
        "+path:models/marts/revenue",
    )
    yield settings


def rows(settings: Settings, query: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(query).fetchall()
    finally:
        con.close()


def month_of(value) -> date:  # type: ignore[no-untyped-def]
    at = value.astimezone(UTC)
    return date(at.year, at.month, 1)


def test_revenue_is_succeeded_charges_less_refunds_and_fees(built: Settings) -> None:
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for tenant, status, currency, amount, refunded, created in rows(
        built,
        "select tenant_id, status, currency, amount, amount_refunded, created_at"
        " from staging.stg_stripe__charges",
    ):
        if status == "succeeded":
            key = (tenant, month_of(created), currency)
            want[key][0] += 1
            want[key][1] += amount
            want[key][2] += refunded or 0
    for tenant, currency, fee, created in rows(
        built,
        "select tenant_id, currency, fee, created_at from staging.stg_stripe__balance_transactions",
    ):
        want[(tenant, month_of(created), currency)][3] += fee or 0
    got = {
        (t, m, c): [n, g, r, f, net]
        for t, m, c, n, g, r, f, net in rows(
            built,
            "select tenant_id, month, currency, charges, gross_amount, refunded_amount,"
            " fee_amount, net_amount from analytics.mart_revenue_monthly",
        )
    }
    assert got and set(got) == set(want)
    for key, (n, g, r, f) in want.items():
        assert got[key] == [n, g, r, f, g - r - f], key
    assert {k[0] for k in got} == set(TENANTS)


def test_traffic_splits_source_and_medium_and_keeps_every_session(built: Settings) -> None:
    staged = rows(
        built,
        "select tenant_id, sum(sessions), sum(conversions) from staging.stg_ga4__report_rows"
        " group by 1 order by 1",
    )
    marts = rows(
        built,
        "select tenant_id, sum(sessions), sum(conversions) from analytics.mart_traffic_by_source"
        " group by 1 order by 1",
    )
    assert marts == staged and len(marts) == len(TENANTS)
    keys = rows(built, "select source, medium from analytics.mart_traffic_by_source")
    assert all(s and m and " / " not in s for s, m in keys)


def test_ai_cost_sums_every_request(built: Settings) -> None:
    staged = rows(
        built,
        "select tenant_id, count(*), round(sum(cost_usd), 6) from staging.stg_ai_usage__usage"
        " group by 1 order by 1",
    )
    marts = rows(
        built,
        "select tenant_id, sum(requests), round(sum(cost_usd), 6)"
        " from analytics.mart_ai_usage_cost group by 1 order by 1",
    )
    assert [(t, n, float(c)) for t, n, c in staged] == [(t, n, float(c)) for t, n, c in marts]


@pytest.mark.parametrize(
    "contract", [REVENUE_MONTHLY, TRAFFIC_BY_SOURCE, AI_USAGE_COST], ids=lambda c: c.name
)
def test_each_tenants_mart_passes_its_serving_contract(built: Settings, contract) -> None:  # type: ignore[no-untyped-def]
    for tenant in TENANTS:
        table = read_mart(built, contract.mart, tenant_id=tenant)
        conformed = contract.conform(tenant, table)
        assert conformed.num_rows > 0


def test_postgres_marts_equal_duckdb_marts_and_rebuild_one_tenant(
    built: Settings, pg_url: str
) -> None:
    """The same marts on Postgres, from the same lake; then a run for one tenant
    rebuilds that tenant's rows only (incremental per tenant)."""
    load_raw(pg_url, built, list(TENANTS))
    pg_settings = get_settings(home=built.home, database_url=pg_url)
    select = ("--select", "+path:models/marts/revenue")
    dbt_build(pg_settings, built.home / "dbt-postgres", *select)
    queries = {
        "mart_revenue_monthly": "tenant_id, month, currency, charges, net_amount",
        "mart_traffic_by_source": "tenant_id, report_date, source, medium, sessions",
        "mart_ai_usage_cost": "tenant_id, month, model, feature, requests, round(cost_usd * 1e6)",
    }
    for mart, columns in queries.items():
        query = f"select {columns} from analytics.{mart} order by 1, 2, 3, 4"
        with psycopg.connect(pg_url) as conn:
            on_postgres = [tuple(_plain(v) for v in r) for r in conn.execute(query).fetchall()]
        on_duckdb = [tuple(_plain(v) for v in r) for r in rows(built, query)]
        assert on_postgres == on_duckdb and on_postgres, mart
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE analytics.mart_revenue_monthly SET charges = -1")
    dbt_build(pg_settings, built.home / "dbt-postgres", *select, tenant="acme")
    with psycopg.connect(pg_url) as conn:
        left = conn.execute(
            "select tenant_id, min(charges) from analytics.mart_revenue_monthly group by 1"
            " order by 1"
        ).fetchall()
    assert left[0][0] == "acme" and left[0][1] >= 0
    assert left[1] == ("globex", -1)


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    return value
