"""The whole job, really run: Dagster in process, real dbt, DuckDB and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from dagster import DagsterInstance

from core.settings import PROJECT_ROOT, Settings
from pipelines.definitions import build_definitions
from pipelines.runner import run_tenants
from sandbox.crm_export import generate_crm_export
from warehouse.marts import read_mart

TENANTS = ("acme-robotics", "bluebird-retail")


def run_everything(settings: Settings) -> None:
    for tenant in TENANTS:
        generate_crm_export(settings.inbox_dir, tenant, leads=40, seed=11)
    with DagsterInstance.ephemeral() as instance:
        runs = run_tenants(build_definitions(settings), settings, instance)
    failed = [f"{r.tenant_id}: {r.error}" for r in runs if not r.success]
    assert not failed, failed
    assert [r.tenant_id for r in runs] == list(TENANTS)


def mart_rows(settings: Settings) -> list[tuple]:
    rows = []
    for tenant in TENANTS:
        for row in read_mart(settings, "mart_lead_scores", tenant_id=tenant).to_pylist():
            row["created_at"] = row["created_at"].astimezone(UTC)
            # When the run scored it: the two targets' runs happen at different times.
            del row["scored_at"]
            rows.append(tuple(sorted(row.items())))
    return sorted(rows)


@pytest.fixture(scope="module")
def duckdb_home(tmp_path_factory) -> Settings:
    """One embedded home, run once for the module (a pipeline run is the expensive
    part); the tests below read it and, last, run one tenant again on it."""
    settings = Settings(home=tmp_path_factory.mktemp("duck"), database_url=None)
    run_everything(settings)
    return settings


@pytest.fixture(scope="module")
def duckdb_marts(duckdb_home: Settings) -> list[tuple]:
    return mart_rows(duckdb_home)


def test_job_on_duckdb_scores_every_good_lead(duckdb_marts):
    # 40 generated leads per tenant; every 29th has an unusable email.
    assert len(duckdb_marts) == 2 * 39
    by_tenant: dict[str, int] = {}
    for row in duckdb_marts:
        record = dict(row)
        by_tenant[record["tenant_id"]] = by_tenant.get(record["tenant_id"], 0) + 1
        assert 0 <= record["score"] <= 100
        assert record["grade"] in {"A", "B", "C", "D"}
        assert record["reasons"]
    assert by_tenant == {"acme-robotics": 39, "bluebird-retail": 39}


def test_job_on_postgres_equals_duckdb_row_for_row(duckdb_marts, pg_settings):
    run_everything(pg_settings)
    assert mart_rows(pg_settings) == duckdb_marts


def test_the_run_publishes_each_tenants_scores(duckdb_home):
    from serving.queries import top_lead_scores

    top = top_lead_scores(duckdb_home, "acme-robotics", 5)
    assert len(top) == 5 and all(r["tenant_id"] == "acme-robotics" for r in top)
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)


def test_a_rerun_with_a_broken_export_quarantines_it_and_duplicates_nothing(
    duckdb_home, duckdb_marts
):
    """Runs last in the module: it drops a broken file into acme's inbox."""
    settings = duckdb_home
    bad = settings.tenant_inbox("acme-robotics") / "crm" / "zz_broken.csv"
    bad.write_text("lead_id,first_name\nX1,Ann\n", encoding="utf-8")
    os.utime(bad, (bad.stat().st_mtime - 60, bad.stat().st_mtime - 60))  # a finished upload
    with DagsterInstance.ephemeral() as instance:
        [run] = run_tenants(
            build_definitions(settings), settings, instance, tenant_ids=["acme-robotics"]
        )
    assert run.success, run.error
    [refused] = run.metadata["crm_export/leads"]["files_quarantined"]
    assert refused["path"] == "zz_broken.csv" and "'email'" in refused["reason"]
    # the same rows as the first run: nothing duplicated, nothing lost
    assert mart_rows(settings) == duckdb_marts


def test_dagster_definitions_validate(tmp_path: Path):
    env = {**os.environ, "BIZOS_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    env.pop("BIZOS_DATABASE_URL", None)
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
