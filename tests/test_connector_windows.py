"""Windowed loads (``--since``/``--until``) against the sandbox over real HTTP: a day
window lands exactly that day's records, leaves the incremental cursor where it
was, and day loads mixed with cursor loads end equal to the ground truth with no
duplicate. Then a window given as run config to a tenant's source asset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

import credentials
from assets.resources import BizosSettings
from assets.sources import source_assets
from connectors.connector import Window, days_window
from connectors.sources import SOURCES
from connectors.state import read_cursor, read_load_log
from core.settings import get_settings
from sandbox.server.running import RunningSandbox
from tests.test_connector_sources import assert_truth, ingest, lake_ids, secret_for, start

# Tables stamped by creation time, or by the time they are listed by, so a day
# window is exactly the records of that day (Stripe's charges and balance
# transactions change later, but are listed and windowed by ``created``).
EVENT_TABLES = [
    ("stripe", "charges"),
    ("stripe", "balance_transactions"),
    *(
        (source, table)
        for source, definition in SOURCES.items()
        for table in definition.tables
        if table in definition.event_tables
    ),
]


def day_window(day: date) -> Window:
    window = days_window(day, day, now=datetime.now(UTC))
    assert window is not None
    return window


def by_day(sb: RunningSandbox, source: str, table: str, tenant: str = "acme") -> dict[date, set]:
    """The generated ids of one table by UTC day, read straight from the generator's files."""
    path = sb.data_dir / tenant / source / f"{table}.parquet"
    columns = {c for (c,) in duckdb.sql(f"SELECT name FROM parquet_schema('{path}')").fetchall()}
    days: dict[date, set[str]] = defaultdict(set)
    if source == "ga4":  # a report row's time is its date
        for row_id, day in duckdb.sql(f"SELECT id, date FROM read_parquet('{path}')").fetchall():
            days[datetime.strptime(day, "%Y%m%d").date()].add(row_id)
    else:
        col = "updated" if "updated" in columns else "created"
        for row_id, ts in duckdb.sql(f"SELECT id, {col} FROM read_parquet('{path}')").fetchall():
            days[datetime.fromtimestamp(ts, UTC).date()].add(row_id)
    return days


def sample_days(days: dict[date, set]) -> list[date]:
    """The first day, the two busiest, and a day with nothing on it."""
    busiest = sorted(days, key=lambda d: len(days[d]), reverse=True)[:2]
    empty = min(days) - timedelta(days=1)
    return sorted({min(days), *busiest, empty})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("sandbox"), scale=0.15) as sb:
        yield sb


@pytest.mark.parametrize(("source", "table"), EVENT_TABLES)
def test_day_windows_load_exactly_their_day_and_leave_the_cursor(settings, sandbox, source, table):
    days = by_day(sandbox, source, table)
    wanted: set[str] = set()
    pages = 0
    for day in sample_days(days):
        # Pages of one record: a busy day spans several, all within the window.
        (result,) = ingest(
            settings, sandbox, source, tables=[table], window=day_window(day), page_size=1
        )
        pages = max(pages, result.pages)
        assert result.status == "success"
        assert result.rows_added == len(days.get(day, ())), day
        wanted |= days.get(day, set())
        assert set(lake_ids(settings, source, table)) == wanted, f"{day}: not exactly the day"
    assert pages >= 2, "the busiest day should span several pages"
    assert read_cursor(settings, tenant_id="acme", source=source, table=table) is None

    # A week at once pages through several pages of the window, still exactly it.
    first = min(days)
    week = (day_window(first)[0], day_window(first + timedelta(days=6))[1])
    ingest(settings, sandbox, source, tables=[table], window=week, page_size=5)
    for n in range(7):
        wanted |= days.get(first + timedelta(days=n), set())
    ids = lake_ids(settings, source, table)
    assert len(ids) == len(set(ids)) and set(ids) == wanted

    log = read_load_log(settings, "acme", source=source)
    assert log and all(row.cursor_before and "window_start" in row.cursor_before for row in log)
    assert all(row.cursor_after and "window_end" in row.cursor_after for row in log)


@pytest.mark.parametrize(("source", "table"), EVENT_TABLES)
def test_days_mixed_with_cursor_loads_equal_ground_truth(settings, sandbox, source, table):
    days = by_day(sandbox, source, table)
    some = sample_days(days)
    for day in some[:2]:
        ingest(settings, sandbox, source, tables=[table], window=day_window(day))
    (full,) = ingest(settings, sandbox, source, tables=[table])
    assert full.rows_added == sum(len(d) for d in days.values()) - sum(
        len(days.get(d, ())) for d in some[:2]
    )
    assert_truth(settings, sandbox, source, table)
    cursor = read_cursor(settings, tenant_id="acme", source=source, table=table)
    assert cursor is not None and cursor["window"] is None

    # Reloading a day after the cursor load changes neither the lake nor the cursor.
    (again,) = ingest(settings, sandbox, source, tables=[table], window=day_window(some[-1]))
    assert again.rows_added == 0 and again.rows_loaded == len(days.get(some[-1], ()))
    assert_truth(settings, sandbox, source, table)
    assert read_cursor(settings, tenant_id="acme", source=source, table=table) == cursor


def test_a_window_with_bad_bounds_is_refused(settings, sandbox):
    day = day_window(date(2026, 3, 2))
    with pytest.raises(ValueError, match="end after it starts"):
        ingest(settings, sandbox, "stripe", tables=["charges"], window=(day[1], day[0]))
    naive = (datetime(2026, 3, 2), datetime(2026, 3, 3))
    with pytest.raises(ValueError, match="time-zone-aware"):
        ingest(settings, sandbox, "stripe", tables=["charges"], window=naive)
    assert read_load_log(settings, "acme") == []


# -- Dagster -------------------------------------------------------------------------


def test_a_window_as_run_config_reloads_that_day(bizos_home, sandbox, monkeypatch, capfd):
    key = credentials.generate_master_key().encoded()
    monkeypatch.setenv("BIZOS_MASTER_KEY", key)
    monkeypatch.setenv("BIZOS_STRIPE_BASE_URL", sandbox.base_url("stripe"))
    settings = get_settings(
        home=bizos_home,
        database_url=None,
        master_key=key,
        stripe_base_url=sandbox.base_url("stripe"),
    )
    credentials.set_secret(
        settings,
        tenant_id="acme",
        source="stripe",
        secret=secret_for(sandbox, "acme", "stripe"),
        actor="test",
    )
    days = by_day(sandbox, "stripe", "charges")
    day = max(days, key=lambda d: len(days[d]))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme"])
    (stripe,) = [a for a in source_assets if AssetKey(["stripe", "charges"]) in a.keys]
    result = materialize(
        [stripe],
        partition_key="acme",
        instance=instance,
        resources={"bizos": BizosSettings(home=str(bizos_home), database_url="")},
        selection=[AssetKey(["stripe", "charges"])],
        run_config={"ops": {"stripe_ingest": {"config": {"since": str(day), "until": str(day)}}}},
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node(stripe.node_def.name)
    assert mat.metadata["rows_added"].value == len(days[day])
    assert set(lake_ids(settings, "stripe", "charges")) == days[day]
    assert read_cursor(settings, tenant_id="acme", source="stripe", table="charges") is None
    # The secret is in no Dagster event or metadata, nor in anything printed.
    secret = sandbox.tenant_token("acme", "stripe")
    events = [str(e) for e in instance.all_logs(result.run_id)]
    assert any("rows_added" in e for e in events)  # metadata is in what is searched
    assert not any(secret in e for e in events)
    printed = capfd.readouterr()
    assert secret not in printed.out + printed.err
