"""Batch refresh (`bizos run --batch-size N`, pipelines/batch.py): how tenants are
split into batches, which tenant ids a batch refuses, and tenants ingested side by
side failing alone.

A whole batch run is compared with per-tenant runs in tests/test_runs_embedded.py
(`test_a_batch_run_on_an_s3_lake_publishes_the_same_scores`, sharing that module's
runs), and batch builds at the dbt level in tests/test_dbt_project.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.batch import split_batches


def spoil_emails(export: Path) -> None:
    """Break every email of an export (its blocking check fails), then date the file
    back past the inbox's settle window as a finished upload is: a fast machine would
    otherwise reach the run within 5 s of the write and skip it as still uploading."""
    export.write_text(export.read_text(encoding="utf-8").replace("@", " at "), encoding="utf-8")
    settled = time.time() - 60
    os.utime(export, (settled, settled))


def test_batches_split_in_order_and_cover_every_tenant():
    ids = [f"t{i}" for i in range(7)]
    assert split_batches(ids, 3) == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    assert split_batches(ids, 0) == [ids]
    assert split_batches([], 3) == []


def test_a_tenant_id_that_could_break_the_tenant_list_is_refused(tmp_path: Path):
    from pipelines.batch import dbt_build

    settings = Settings(home=tmp_path, database_url=None)
    with pytest.raises(ValueError, match="invalid tenant id"):
        dbt_build(settings, ["ok", "a,b"], "dbt_marts", batch_id="x", log=print)


def test_tenants_ingested_side_by_side_fail_alone(tmp_path: Path):
    """A batch ingests its tenants in worker processes (``execute_side_by_side``):
    a tenant whose export is broken fails its blocking check and only itself; the
    other tenant's leads land; each is its own run in the installation's instance."""
    from pipelines.batch import batch_ingest, execute_side_by_side
    from pipelines.runner import TenantRun, dagster_instance
    from sandbox.crm_export import generate_crm_export

    settings = Settings(home=tmp_path, database_url=None)
    generate_crm_export(settings.inbox_dir, "t-good", leads=20, seed=1)
    bad = generate_crm_export(settings.inbox_dir, "t-bad", leads=20, seed=2).path
    spoil_emails(bad)
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("tenants", ["t-good", "t-bad"])
    runs = [TenantRun(t, success=True, run_id="", seconds=0.0) for t in ("t-good", "t-bad")]

    execute_side_by_side(settings, batch_ingest.name, runs, {"bizos/test": "1"}, workers=2)

    good, broken = runs
    assert good.success, good.error
    assert good.metadata["crm_export/leads"]["rows_loaded"] == 20
    assert not broken.success
    assert "crm_export_leads_expectations" in (broken.error or ""), broken.error
    statuses = {r.run_id: r.status.value for r in instance.get_runs()}
    assert statuses[good.run_id] == "SUCCESS" and good.run_id != broken.run_id
    assert broken.run_id in statuses


def test_a_publish_run_reports_its_batchs_mart_verdicts_and_blocks_on_a_failed_one(
    tmp_path: Path,
):
    """A batch checks its marts once (``batch_mart_records``) and keeps each tenant's
    verdicts; the tenant's ``batch_publish`` run, tagged with the batch, reports
    those verdicts as its blocking ``mart_checks`` without checking again, and a
    failed verdict keeps that mart's serving table from publishing."""
    from dagster import AssetKey

    from assets.quality_checks import MART_VERDICTS_TAG
    from core.contracts.serving_tables import SERVING_TABLES
    from pipelines.batch import batch_publish, blocking_check_failures
    from pipelines.definitions import build_definitions
    from pipelines.runner import QUIET_RUN_CONFIG, dagster_instance
    from quality.results import CheckRecord, record_results, results_of_run

    settings = Settings(home=tmp_path, database_url=None)
    verdicts = [
        CheckRecord(
            check_name="expectations",
            asset_key=contract.mart,
            tenant_id=tenant,
            passed=False,
            blocking=True,
            severity="ERROR",
            observed_value=f"1 of 9 expectations failed on 12 rows ({tenant})",
            details={"failed_expectations": [{"expectation": "score: between"}]},
            run_id="batch-feedface",
        )
        for contract in SERVING_TABLES.values()
        for tenant in ("t-a", "t-b")
    ]
    record_results(settings, verdicts)
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("tenants", ["t-a"])

    result = (
        build_definitions(settings)
        .resolve_job_def(batch_publish.name)
        .execute_in_process(
            partition_key="t-a",
            instance=instance,
            raise_on_error=False,
            run_config=QUIET_RUN_CONFIG,
            tags={MART_VERDICTS_TAG: "batch-feedface"},
        )
    )

    failed = set(blocking_check_failures(result))
    assert failed == {f"{c.mart}:expectations" for c in SERVING_TABLES.values()}
    evaluation = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == AssetKey(SERVING_TABLES["lead_scores"].mart)
    )
    assert (
        evaluation.metadata["observed_value"].value == "1 of 9 expectations failed on 12 rows (t-a)"
    )
    assert result.get_asset_materialization_events() == []
    # Reported, not evaluated again: the batch's verdicts are all there are.
    assert len(results_of_run(settings, run_id="batch-feedface")) == len(verdicts)
    assert results_of_run(settings, run_id=result.run_id) == []


def test_the_daily_refresh_runs_in_batches_when_a_batch_size_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """With BIZOS_REFRESH_BATCH_SIZE set, the per-tenant ``daily_refresh`` skips its
    tick and ``daily_batch_refresh`` asks for one run of ``daily_batch_refresh_job``,
    which refreshes the tenants on the batch path, each tenant's work a run of its
    own partition; a failed tenant fails the batch's run, named with its reason."""
    from datetime import UTC, datetime

    from dagster import RunRequest, SkipReason, build_schedule_context

    from assets.resources import BizosSettings
    from pipelines.daily_batch import daily_batch_refresh, daily_batch_refresh_job
    from pipelines.definitions import build_definitions, daily_refresh
    from pipelines.runner import QUIET_RUN_CONFIG, dagster_instance
    from sandbox.crm_export import generate_crm_export

    settings = Settings(home=tmp_path, database_url=None)
    bad = generate_crm_export(settings.inbox_dir, "t-bad", leads=20, seed=2).path
    spoil_emails(bad)
    # An instance of this home's own (dagster_instance keeps the first DAGSTER_HOME
    # of the process, and other tests of this worker made theirs).
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("tenants", ["t-bad"])
    resources = {"bizos": BizosSettings(home=str(tmp_path), database_url="")}
    tick = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

    def evaluate(schedule):  # noqa: ANN001, ANN202
        with build_schedule_context(
            instance=instance, scheduled_execution_time=tick, resources=resources
        ) as context:
            return schedule(context)

    assert isinstance(evaluate(daily_batch_refresh), SkipReason)  # the default: per tenant
    assert [r.partition_key for r in evaluate(daily_refresh)] == ["t-bad"]
    monkeypatch.setenv("BIZOS_REFRESH_BATCH_SIZE", "25")
    assert isinstance(evaluate(daily_refresh), SkipReason)
    request = evaluate(daily_batch_refresh)
    assert isinstance(request, RunRequest) and request.run_key == "daily-batch:2026-11-30T02:00"

    result = (
        build_definitions(settings)
        .resolve_job_def(daily_batch_refresh_job.name)
        .execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG)
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description or ""
    assert "1 of 1 tenants failed: t-bad: batch_ingest:" in message
    assert "crm_export_leads_expectations" in message, message
    tenant_runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == "t-bad"]
    assert [r.job_name for r in tenant_runs] == ["batch_ingest"]
    assert tenant_runs[0].tags["bizos/batch"].startswith("batch-")
