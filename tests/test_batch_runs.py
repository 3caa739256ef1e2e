"""Batch refresh (`bizos run --batch-size N`, pipelines/batch.py) against per-tenant runs.

Two homes with the same CRM exports, refreshed at the same time (the expensive
part, once per module): one with `bizos run` (one materialize_all run per tenant,
dbt started twice per tenant), one with `bizos run --batch-size 2` (dbt started
twice for the batch). The batch must publish the same scores, keep each tenant's
rows to itself, and start dbt twice, not four times.
"""

from __future__ import annotations

import subprocess
from datetime import UTC
from pathlib import Path

import duckdb
import pytest

from core.settings import PROJECT_ROOT, Settings
from pipelines.batch import split_batches
from serving.queries import top_lead_scores
from tests.runs import BIZOS, GOOD_LEADS, finish, run_env, tenant_log, with_exports
from warehouse.marts import read_mart

TENANTS = ("north-a", "north-b")
"""Lead ids start with the tenant's first three letters: these two share them, so
only the tenant column keeps their leads apart."""
pytestmark = pytest.mark.timeout(1500)

# What differs between two runs of the same data: when, and by which run.
VOLATILE = {"scored_at", "trained_at", "published_at", "run_id"}


def start(settings: Settings, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIZOS), "run", *extra],
        cwd=PROJECT_ROOT,
        env=run_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    homes = {
        "per_tenant": Settings(home=tmp_path_factory.mktemp("per-tenant"), database_url=None),
        "batch": Settings(home=tmp_path_factory.mktemp("batch"), database_url=None),
    }
    for settings in homes.values():
        with_exports(settings, TENANTS)
    procs = {
        "per_tenant": start(homes["per_tenant"]),
        "batch": start(homes["batch"], "--batch-size", "2"),
    }
    outs = {name: finish(proc) for name, proc in procs.items()}
    failed = {
        name: out + "".join(tenant_log(homes[name], t) for t in TENANTS)
        for name, (rc, out) in outs.items()
        if rc != 0
    }
    assert not failed, failed
    return homes


def served(settings: Settings, tenant: str) -> list[tuple]:
    rows = []
    for row in top_lead_scores(settings, tenant, 1000):
        rows.append(tuple(sorted((k, v) for k, v in row.items() if k not in VOLATILE)))
    return sorted(rows, key=repr)


def mart(settings: Settings, name: str, tenant: str) -> list[tuple]:
    rows = []
    for row in read_mart(settings, name, tenant_id=tenant).to_pylist():
        for key in VOLATILE:
            row.pop(key, None)
        for key, value in row.items():
            if hasattr(value, "astimezone"):
                row[key] = value.astimezone(UTC)
        rows.append(tuple(sorted(row.items())))
    return sorted(rows, key=repr)


def test_the_batch_publishes_the_same_scores_as_per_tenant_runs(homes):
    for tenant in TENANTS:
        batch = served(homes["batch"], tenant)
        assert len(batch) == GOOD_LEADS, tenant
        assert batch == served(homes["per_tenant"], tenant), tenant


def test_the_batch_builds_the_same_marts_as_per_tenant_runs(homes):
    for name in ("mart_lead_scores", "mart_lead_model_cards"):
        for tenant in TENANTS:
            assert mart(homes["batch"], name, tenant) == mart(homes["per_tenant"], name, tenant)


def test_the_batch_keeps_each_tenant_to_its_own_rows(homes):
    settings = homes["batch"]
    for tenant in TENANTS:
        scores = read_mart(settings, "mart_lead_scores", tenant_id=tenant)
        assert set(scores.column("tenant_id").to_pylist()) == {tenant}
        leads = set(scores.column("lead_id").to_pylist())
        served_rows = top_lead_scores(settings, tenant, 1000)
        assert {r["tenant_id"] for r in served_rows} == {tenant}
        assert {r["lead_id"] for r in served_rows} == leads
    # both tenants have leads NOR-00001...: every (tenant, lead) once, all of them,
    # nobody else's
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        pairs = conn.execute("SELECT tenant_id, lead_id FROM analytics.mart_lead_scores").fetchall()
    assert len(pairs) == len(set(pairs)) == GOOD_LEADS * len(TENANTS)
    assert {t for t, _ in pairs} == set(TENANTS)


def dbt_builds(settings: Settings) -> int:
    return len([p for p in (settings.home / "dbt" / "runs").iterdir() if p.is_dir()])


def test_the_batch_starts_dbt_twice_where_per_tenant_runs_start_it_twice_each(homes):
    assert dbt_builds(homes["batch"]) == 2
    assert dbt_builds(homes["per_tenant"]) == 2 * len(TENANTS)
    log = (homes["batch"].home / "logs").glob("batch-*.dbt.log")
    text = "".join(p.read_text(errors="replace") for p in log)
    assert "Completed successfully" in text


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
