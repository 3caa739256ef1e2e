"""A backfill's window reaches dbt and the incremental mart really runs incrementally:
the days inside the window are rebuilt, the rows of every other day are left as
they were (marked here by hand to tell them apart), on real dbt builds on DuckDB
and on Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pytest
from pydantic import SecretStr

from assets.warehouse import BUILD_ARGS, build_args
from connectors.landing import read_table
from core.run_window import WINDOW_TAG, DayWindow, parse_window_tag
from core.settings import Settings, Target, get_settings
from tests.test_connector_sources import ingest as ingest_source
from tests.test_connector_sources import start as start_sandbox_data
from tests.test_dbt_project import dbt_build, load_raw

TENANT = "acme"
MART = "analytics.mart_revenue_daily"
SELECT = ["--select", "stg_stripe__charges mart_revenue_daily"]
UNTOUCHED = -1  # no real day nets this: a row still holding it was not rebuilt


@pytest.fixture(scope="module")
def stripe_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, date]]:
    tmp = tmp_path_factory.mktemp("window")
    settings = get_settings(home=tmp / "bizos", database_url=None)
    with start_sandbox_data(tmp, scale=0.1) as sandbox:
        ingest_source(settings, sandbox, "stripe", TENANT)
        as_of = datetime.strptime(sandbox.ground_truth.as_of, "%Y-%m-%dT%H:%M:%SZ").date()
    yield settings, as_of


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, stripe_lake: tuple[Settings, date]) -> Settings:
    """The lake's settings on DuckDB, or the same lake copied into a fresh Postgres
    (schema raw, as the raw_tables asset copies it) with dbt building there."""
    settings, _ = stripe_lake
    if request.param == "duckdb":
        return settings
    pg_url: str = request.getfixturevalue("pg_url")
    load_raw(pg_url, settings, [TENANT])
    return settings.model_copy(update={"database_url": SecretStr(pg_url)})


def mart(settings: Settings) -> dict[tuple[date, str], int]:
    query = f"SELECT revenue_date, currency, amount_net FROM {MART} WHERE tenant_id = '{TENANT}'"
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url) as conn:
            rows = conn.execute(query).fetchall()  # type: ignore[arg-type]
    else:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            rows = conn.execute(query).fetchall()
    return {(day, currency): int(net) for day, currency, net in rows}


def mark_every_row(settings: Settings) -> None:
    update = f"UPDATE {MART} SET amount_net = {UNTOUCHED}"
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
            conn.execute(update)  # type: ignore[arg-type]
    else:
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            conn.execute(update)


def test_a_backfill_window_rebuilds_only_its_days(
    stripe_lake: tuple[Settings, date], target: Settings, tmp_path: Path
) -> None:
    _, as_of = stripe_lake
    settings = target
    landed = read_table(settings, "stripe", "charges", TENANT)
    assert landed is not None
    days = sorted(
        {datetime.fromtimestamp(c, UTC).date() for c in landed.column("created").to_pylist()}
    )
    # Three days with charges, well inside the history.
    until = days[len(days) // 2]
    window = DayWindow(until - timedelta(days=2), until)
    args = build_args({WINDOW_TAG: window.tag, "dagster/partition": TENANT})
    assert args[: len(BUILD_ARGS)] == BUILD_ARGS
    vars_args = args[len(BUILD_ARGS) :]

    # The first build makes the table whole (not incremental yet, the window is moot);
    # the same vars in both builds let the second reuse the first's parse.
    dbt_build(settings, tmp_path / "full", *vars_args, *SELECT, tenant=TENANT)
    built = mart(settings)
    assert {day for day, _ in built} == set(days)
    assert all(net != UNTOUCHED for net in built.values())

    mark_every_row(settings)

    output = dbt_build(settings, tmp_path / "window", *vars_args, *SELECT, tenant=TENANT)
    assert "mart_revenue_daily" in output

    after = mart(settings)
    assert set(after) == set(built)  # no day lost, none duplicated
    inside = {k for k in built if window.since <= k[0] <= window.until}
    assert inside, "the window holds charges"
    for key, net in after.items():
        if key in inside:
            assert net == built[key], key  # rebuilt from the lake: its real value again
        else:
            assert net == UNTOUCHED, key  # outside the window: not touched
    assert as_of > window.until


def test_runs_without_a_window_pass_no_vars_and_keep_the_partial_parse() -> None:
    assert build_args({"dagster/partition": TENANT}) == BUILD_ARGS
    window = parse_window_tag("2026-11-01..2026-11-03")
    assert window is not None
    assert window.dbt_vars() == {"window_start": "2026-11-01", "window_end": "2026-11-04"}
    for bad in ("2026-11-01", "2026-11-03..2026-11-01", "yesterday..today"):
        with pytest.raises(ValueError, match=WINDOW_TAG):
            parse_window_tag(bad)
