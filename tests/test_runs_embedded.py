"""The whole job on the embedded target, as users run it: real `bizos run`
processes, real Dagster, real dbt, DuckDB.

One home for the module (whole runs are the expensive part): two tenants'
runs started together, as the daily schedule starts them, then, on the same
home, a run killed mid-dbt and the run after it, which also meets a broken
export. DuckDB allows one writing process, so runs that overlap must take
turns on the warehouse without failing.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC
from pathlib import Path

import psutil
import pytest

from core.settings import PROJECT_ROOT, Settings
from lake.files import find, lake_root
from quality.results import latest_results
from sandbox.crm_export import generate_crm_export
from serving.queries import top_lead_scores
from tests.runs import (
    GOOD_LEADS,
    LEADS,
    assert_each_tenant_scored_and_served,
    finish,
    run_together,
    start_batch,
    start_run,
    tenant_log,
    with_exports,
)
from tests.s3 import SECRET_KEY
from warehouse.marts import read_mart

TENANTS = ("t-north", "t-south")  # two runs overlap as well as three, for 2/3 the time
# Whole runs in subprocesses: generous on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1500)


def mart_rows(settings: Settings, tenant: str) -> list[tuple]:
    rows = []
    for row in read_mart(settings, "mart_lead_scores", tenant_id=tenant).to_pylist():
        row["created_at"] = row["created_at"].astimezone(UTC)
        row.pop("scored_at", None)  # when it was scored: a re-run scores again
        rows.append(tuple(sorted(row.items())))
    return sorted(rows)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("together"), database_url=None)
    run_together(settings, TENANTS)
    return settings


@pytest.fixture(scope="module")
def first_marts(home: Settings) -> dict[str, list[tuple]]:
    return {tenant: mart_rows(home, tenant) for tenant in TENANTS}


def test_tenant_runs_started_together_all_succeed(home, first_marts):
    assert_each_tenant_scored_and_served(home, TENANTS)
    # dbt's target and logs live under BIZOS_HOME, a folder per dbt step of each run
    # (named <time>-<run id>-<pid>): a run each, and nothing written into the checkout.
    folders = list((home.home / "dbt" / "runs").iterdir())
    assert len({f.name.split("-")[1] for f in folders}) == len(TENANTS)
    assert not (PROJECT_ROOT / "dbt" / "target").exists()


def test_every_good_lead_is_scored_with_a_grade_and_reasons(first_marts):
    for tenant, rows in first_marts.items():
        assert len(rows) == GOOD_LEADS, tenant
        for row in rows:
            record = dict(row)
            assert 0 <= record["score"] <= 100
            assert record["grade"] in {"A", "B", "C", "D"}
            assert record["reasons"]


def test_the_served_scores_are_the_tenants_best_first(home):
    top = top_lead_scores(home, "t-north", 5)
    assert len(top) == 5 and all(r["tenant_id"] == "t-north" for r in top)
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)


# -- the same run on an S3 lake ------------------------------------------------------


def served_rows(settings: Settings, tenant: str) -> list[dict]:
    rows = top_lead_scores(settings, tenant, 100)
    for row in rows:
        # When it was scored and published: each run's own time.
        row.pop("scored_at")
        row.pop("published_at")
    return rows


BATCH = ("t-north", "t-south")


def test_a_batch_run_on_an_s3_lake_publishes_the_same_scores(
    home, first_marts, s3_server, tmp_path
):
    """Two tenants in one `bizos run --batch-size 2` (one dbt build for both, twice:
    before and after the lead model; pipelines/batch.py) with BIZOS_LAKE_URL=
    s3://bucket/prefix (moto's server, tests/s3.py): the lake is written there and dbt
    reads it through httpfs. Each tenant's marts and served scores equal those of
    its own local-folder run above (same exports, same seeds), so neither the batch
    nor the object store changes a score or mixes tenants; the S3 secret is in no
    output, log or file. One run checks both, to spare the suite a whole run."""
    settings = s3_server.settings(tmp_path / "s3-home")
    (settings.home).mkdir()
    with_exports(settings, BATCH)  # seeds by position: the same exports as `home`'s
    # One tenant's ingest at a time: side by side has its own test (test_batch_runs.py).
    rc, out = finish(start_batch(settings, size=len(BATCH), ingest_workers=1))
    assert rc == 0, out + "".join(tenant_log(settings, t) for t in BATCH)

    assert not (settings.home / "lake").exists()  # nothing landed on local disk
    root = lake_root(settings)
    for tenant in BATCH:
        assert find(root, f"crm_export/leads/tenant={tenant}/*.parquet")
        assert mart_rows(settings, tenant) == first_marts[tenant], tenant
        assert served_rows(settings, tenant) == served_rows(home, tenant), tenant
        assert {r["tenant_id"] for r in top_lead_scores(settings, tenant, 1000)} == {tenant}
    # The batch checked its marts once for both tenants; each publish run reported
    # its tenant's verdicts (assets/quality_checks.py, MART_VERDICTS_TAG).
    for tenant in BATCH:
        [verdict] = [
            r
            for r in latest_results(settings, tenant_id=tenant, asset_keys=["mart_lead_scores"])
            if r.check_name == "expectations"  # the GX suite; dbt's tests are kept beside
        ]
        assert verdict.passed and (verdict.run_id or "").startswith("batch-"), verdict
        assert verdict.details["checked_with_tenants"] == len(BATCH)
        assert verdict.details["rows_checked"] == GOOD_LEADS
    # dbt started twice for the batch, where per-tenant runs start it twice each.
    builds = [p for p in (settings.home / "dbt" / "runs").iterdir() if p.is_dir()]
    assert len(builds) == 2, builds

    assert SECRET_KEY not in out
    for path in settings.home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET_KEY.encode() not in path.read_bytes(), path


# -- a killed run, and the run after it ----------------------------------------------

REAL_DBT = str(Path(sys.executable).with_name("dbt"))


def dbt_build_under(pid: int) -> psutil.Process | None:
    """The `dbt build` process among ``pid``'s descendants, if one is running: dbt
    itself, not the launcher (BIZOS_HOME/dbt/bin/dbt) before it has become dbt."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            cmd = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "build" in cmd and REAL_DBT in cmd:
            return child
    return None


def instance_runs(settings: Settings) -> dict[str, str]:
    """run id -> status of every run in the installation's Dagster instance."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(settings.home / "dagster")) as instance:
        return {run.run_id: run.status.value for run in instance.get_runs()}


def test_a_run_killed_mid_dbt_leaves_nothing_that_breaks_the_next(home, first_marts):
    """Runs after the others on ``home`` but one. The next run also meets a broken export: it
    quarantines the file and, like any re-run, duplicates and loses nothing."""
    settings, tenant = home, "t-north"
    bad = settings.tenant_inbox(tenant) / "crm" / "zz_broken.csv"
    bad.write_text("lead_id,first_name\nX1,Ann\n", encoding="utf-8")
    os.utime(bad, (bad.stat().st_mtime - 60, bad.stat().st_mtime - 60))  # a finished upload

    proc = start_run(settings, tenant)
    deadline = time.monotonic() + 600
    dbt = None
    while dbt is None and proc.poll() is None and time.monotonic() < deadline:
        dbt = dbt_build_under(proc.pid)
        time.sleep(0.2)
    assert dbt is not None, finish(proc)[1] + tenant_log(settings, tenant)
    # dbt runs in a process group of its own, so a signal to the run's group (a
    # terminal's Ctrl-C, a supervisor) does not reach it: only its parent's death.
    assert os.getpgid(dbt.pid) == dbt.pid
    # What a publish and a lake write leave when killed half-way.
    next_file = settings.serving_dir / "serving.duckdb.next-0123abcd"
    next_file.write_bytes(b"half a database")
    lake_tmp = settings.lake_dir / "crm_export" / "leads" / f"tenant={tenant}" / ".p.parquet.ab.tmp"
    lake_tmp.write_bytes(b"half a parquet")

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs([dbt], timeout=15)
    assert not alive, f"dbt (pid {dbt.pid}) outlived its killed run"
    [killed_run] = [r for r, status in instance_runs(settings).items() if status == "STARTED"]

    rc, out = finish(start_run(settings, tenant))
    assert rc == 0, out + tenant_log(settings, tenant)
    statuses = instance_runs(settings)
    assert statuses[killed_run] == "FAILURE"
    assert sorted(statuses.values()) == ["FAILURE"] + ["SUCCESS"] * (len(TENANTS) + 1)
    assert not next_file.exists() and not lake_tmp.exists()
    # The broken file is refused by name, with the reason; the good export still loads.
    assert "zz_broken.csv" in out and "'email'" in out, out
    assert mart_rows(settings, tenant) == first_marts[tenant]


def test_a_batch_without_ingest_rebuilds_and_republishes_from_the_lake(home, first_marts):
    """Runs last in the module. `bizos run --batch-size 2 --no-ingest` (pipelines/batch.py,
    ``ingest=False``): both tenants' warehouse rebuilt, refit and republished from the
    lake as the last ingest left it. A new export waiting in the inbox is not read (its
    leads would change the scores), no ingest run starts, and the scores are published
    again, the same as before."""
    generate_crm_export(home.inbox_dir, "t-north", leads=LEADS + 15, seed=99)
    published = {t: {r["published_at"] for r in top_lead_scores(home, t, 100)} for t in TENANTS}
    runs_before = set(instance_runs(home))
    builds_before = set((home.home / "dbt" / "runs").iterdir())

    rc, out = finish(start_batch(home, size=len(TENANTS), ingest=False))
    assert rc == 0, out + "".join(tenant_log(home, t) for t in TENANTS)

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home.home / "dagster")) as instance:
        new = [r for r in instance.get_runs() if r.run_id not in runs_before]
    assert sorted(r.job_name for r in new) == sorted(["batch_lead_model", "batch_publish"] * 2)
    assert all(r.status.value == "SUCCESS" for r in new)
    assert len(set((home.home / "dbt" / "runs").iterdir()) - builds_before) == 2
    for tenant in TENANTS:
        assert mart_rows(home, tenant) == first_marts[tenant], tenant
        served = top_lead_scores(home, tenant, 100)
        assert len(served) == GOOD_LEADS
        assert {r["published_at"] for r in served}.isdisjoint(published[tenant]), tenant
