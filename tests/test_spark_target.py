"""The dbt project on Spark: the same lake, built by dbt-spark over pyspark local[*],
gives the same lead scores as DuckDB, row for row.

One small lake (the known leads of test_dbt_project and the generated leads of
test_lead_marts: four tenants, 636 leads) is built once on DuckDB and once on Spark
for the module; the Spark build is the expensive part (a JVM, a Derby metastore), so
it runs once, on the lead-score path only, without the data tests (DuckDB's builds in
the other modules run those). Spark's tables are read back from their Parquet files.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.settings import Settings, get_settings
from exports.crm_leads import leads_path
from spark.dbt_spark import lake_globs, steps
from tests.test_dbt_project import (
    EXPECTED_SCORES,
    dbt_build,
    known_leads,
    normalized,
    write_lake,
)
from tests.test_lead_marts import lake_rows
from warehouse.spark_target import spark_build, spark_dbt_env, spark_table_dir

LEAD_PATH = ("--select", "+mart_lead_scores", "+mart_lead_funnel", "+mart_lead_score_history")
# then, in the same Spark session, one tenant's rebuild of the incremental marts, as a
# tenant's run does: delete+insert of t1's rows (macros/spark/delete_insert.sql)
TENANT_STEP = (
    "--select",
    "mart_lead_scores",
    "mart_lead_score_history",
    "--vars",
    "{tenant_id: t1}",
)
# Unit tests and data tests run on DuckDB in the other modules; here only the models.
MODELS_ONLY = ("--exclude-resource-type", "unit_test", "test")
NOT_COMPARED = {"scored_at"}  # the run's start time when no lead model has run


def spark_rows(settings: Settings, table: str, columns: list[str]) -> list[tuple]:
    files = spark_table_dir(settings, "analytics", table) / "*.parquet"
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        return normalized(
            conn.execute(f"select {', '.join(columns)} from read_parquet('{files}')").fetchall()
        )


def duckdb_rows(settings: Settings, table: str, columns: list[str]) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return normalized(
            conn.execute(f"select {', '.join(columns)} from analytics.{table}").fetchall()
        )


def columns_of(settings: Settings, table: str) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        described = conn.execute(f"describe analytics.{table}").fetchall()
    return [name for name, *_ in described if name not in NOT_COMPARED]


def drift_a_column(settings: Settings) -> None:
    """An undeclared field that one tenant's file holds as numbers and another's as
    text, as a provider's field drifts between batches: Spark's ``mergeSchema``
    refuses such files, so the table is read group by group with that column as text
    (spark/dbt_spark.py, ``register_drifting``), as DuckDB's ``union_by_name`` reads it."""
    for tenant, values in (("t1", pa.array([7], pa.int64())), ("t2", pa.array(["7"]))):
        path = leads_path(settings, tenant)
        table = pq.read_table(path)
        column = pa.repeat(values[0], table.num_rows) if table.num_rows else values[:0]
        pq.write_table(table.append_column("custom_score", column), path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("spark")
    settings = get_settings(home=home, database_url=None, spark_shuffle_partitions=2)
    write_lake(settings, known_leads() + lake_rows())
    drift_a_column(settings)
    dbt_build(settings, home / "dbt-duckdb", *LEAD_PATH, *MODELS_ONLY)
    started = time.monotonic()
    build = spark_build(
        settings,
        home / "dbt-spark",
        *LEAD_PATH,
        *MODELS_ONLY,
        selector=None,
        then=[(*TENANT_STEP, *MODELS_ONLY)],
    )
    assert build.ok, build.output[-6000:]
    assert "raw.crm_export__leads: files disagree on the type of custom_score" in build.output
    print(f"spark: lead-score path and a tenant rebuild in {time.monotonic() - started:.0f}s")
    return settings


def test_spark_lead_scores_equal_duckdb_row_for_row(built: Settings) -> None:
    columns = columns_of(built, "mart_lead_scores")
    assert {"score", "grade", "reasons", "reasons_json", "score_model"} <= set(columns)

    on_spark = spark_rows(built, "mart_lead_scores", columns)
    on_duckdb = duckdb_rows(built, "mart_lead_scores", columns)

    assert len(on_duckdb) == 636
    assert on_spark == on_duckdb


def test_spark_scores_the_known_leads(built: Settings) -> None:
    rows = spark_rows(
        built, "mart_lead_scores", ["tenant_id", "lead_id", "score", "grade", "reasons"]
    )
    scored = {(t, lead): (score, grade, reasons) for t, lead, score, grade, reasons in rows}
    assert {key: scored[key] for key in EXPECTED_SCORES} == EXPECTED_SCORES


def test_spark_lead_funnel_equals_duckdb(built: Settings) -> None:
    columns = columns_of(built, "mart_lead_funnel")
    on_spark = spark_rows(built, "mart_lead_funnel", columns)
    assert on_spark and on_spark == duckdb_rows(built, "mart_lead_funnel", columns)


def test_a_tenant_rebuild_on_spark_replaces_only_that_tenants_rows(built: Settings) -> None:
    """After the t1 step, every tenant's scores still equal DuckDB's (above), and the
    history holds each other tenant's rows once and t1's with no key twice."""
    keys = ["tenant_id", "lead_id", "scored_at"]
    history = spark_rows(built, "mart_lead_score_history", keys)
    on_duckdb = duckdb_rows(built, "mart_lead_score_history", keys)
    assert len(set(history)) == len(history)

    def leads(rows: list[tuple], tenant: str) -> list[str]:
        return sorted(lead for t, lead, _ in rows if t == tenant)

    for tenant in ("t2", "big-co", "small-co"):
        assert leads(history, tenant) == leads(on_duckdb, tenant), tenant
    latest = max(at for t, _, at in history if t == "t1")
    assert sorted(lead for t, lead, at in history if t == "t1" and at == latest) == leads(
        on_duckdb, "t1"
    )
    scores_at = {at for t, _, at in spark_rows(built, "mart_lead_scores", keys) if t == "t1"}
    assert scores_at == {latest}


def test_steps_split_on_the_separator() -> None:
    assert steps(["build", "-s", "a", "--and-then", "build", "-s", "b"]) == [
        ["build", "-s", "a"],
        ["build", "-s", "b"],
    ]
    with pytest.raises(SystemExit, match="empty dbt step"):
        steps(["build", "--and-then"])


def test_lake_globs_follow_the_layout_and_refuse_a_mixed_one(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for path in (
        "crm_api/leads/tenant=t1/month=2026-01/part.parquet",
        "crm_api/leads/tenant=t2/month=2026-02/part.parquet",
        "crm_export/leads/tenant=t1/leads.parquet",
        "crm_export/leads/tenant=t1/.leads.parquet.tmp/x.parquet",
        "_quarantine/crm_export/leads/bad.parquet",
    ):
        (lake / path).parent.mkdir(parents=True, exist_ok=True)
        (lake / path).write_bytes(b"")
    (lake / "stripe" / "customers").mkdir(parents=True)  # connected, nothing landed

    assert lake_globs(lake) == {
        "crm_api__leads": f"{lake}/crm_api/leads/tenant=*/*/*.parquet",
        "crm_export__leads": f"{lake}/crm_export/leads/tenant=*/*.parquet",
    }

    (lake / "crm_export/leads/tenant=t2/month=2026-01").mkdir(parents=True)
    (lake / "crm_export/leads/tenant=t2/month=2026-01/part.parquet").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"crm_export/leads has Parquet files at depths \[2, 3\]"):
        lake_globs(lake)


def test_the_spark_build_gets_no_secret(tmp_path: Path) -> None:
    settings = get_settings(
        home=tmp_path, database_url="postgresql://bizos:s3cret@db.example/bizos"
    )
    env = spark_dbt_env(settings, tmp_path / "run")
    assert env["DBT_TARGET"] == "spark"
    assert env["BIZOS_LAKE_DIR"] == str(settings.lake_dir)
    assert not any("s3cret" in value for value in env.values())
