"""Batch refresh (`bizos run --batch-size N`, pipelines/batch.py): how tenants are
split into batches, which tenant ids a batch refuses, and tenants ingested side by
side failing alone.

A whole batch run is compared with per-tenant runs in tests/test_runs_embedded.py
(`test_a_batch_run_on_an_s3_lake_publishes_the_same_scores`, sharing that module's
runs), and batch builds at the dbt level in tests/test_dbt_project.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.batch import split_batches


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
    bad.write_text(bad.read_text(encoding="utf-8").replace("@", " at "), encoding="utf-8")
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
