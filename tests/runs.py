"""Whole `bizos run` processes for the tests: started as a user starts them, on a
BIZOS_HOME of the test's own, with their output and each tenant's run log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings
from sandbox.crm_export import generate_crm_export
from serving.queries import top_lead_scores
from warehouse.marts import read_mart

BIZOS = Path(sys.executable).with_name("bizos")
LEADS = 30  # every 29th generated lead has an unusable email: 29 scored per tenant
GOOD_LEADS = LEADS - 1


def run_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIZOS_", "DAGSTER_"))}
    env["BIZOS_HOME"] = str(settings.home)
    if settings.database_url is not None:
        env["BIZOS_DATABASE_URL"] = settings.database_url.get_secret_value()
    if settings.lake_url is not None:
        env["BIZOS_LAKE_URL"] = settings.lake_url
        env.update({k: v for k, v in settings.dbt_env().items() if k.startswith("AWS_")})
    return env


def start_run(settings: Settings, tenant: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIZOS), "run", "--tenant", tenant],
        cwd=PROJECT_ROOT,
        env=run_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_batch(
    settings: Settings, size: int, *, ingest_workers: int | None = None, ingest: bool = True
) -> subprocess.Popen[str]:
    """`bizos run --batch-size N`: every tenant with an inbox, N per dbt build;
    ``ingest_workers`` sets BIZOS_MAX_CONCURRENT_RUNS (1: ingest in the run's own
    process, sparing a suite the workers' start-up); ``ingest=False`` adds
    ``--no-ingest``."""
    env = run_env(settings)
    if ingest_workers is not None:
        env["BIZOS_MAX_CONCURRENT_RUNS"] = str(ingest_workers)
    return subprocess.Popen(
        [str(BIZOS), "run", "--batch-size", str(size), *([] if ingest else ["--no-ingest"])],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 1200) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def with_exports(settings: Settings, tenants: tuple[str, ...]) -> None:
    for i, tenant in enumerate(tenants):
        generate_crm_export(settings.inbox_dir, tenant, leads=LEADS, seed=20 + i)


def tenant_log(settings: Settings, tenant: str) -> str:
    path = settings.home / "logs" / f"{tenant}.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def run_together(settings: Settings, tenants: tuple[str, ...]) -> dict[str, str]:
    """Start one `bizos run --tenant X` per tenant at once, as the daily schedule's
    runs start; every one must succeed. Returns each run's output."""
    with_exports(settings, tenants)
    procs = {tenant: start_run(settings, tenant) for tenant in tenants}
    results = {tenant: finish(proc) for tenant, proc in procs.items()}
    failed = {t: out + tenant_log(settings, t) for t, (rc, out) in results.items() if rc != 0}
    assert not failed, failed
    return {tenant: out for tenant, (_, out) in results.items()}


def assert_each_tenant_scored_and_served(settings: Settings, tenants: tuple[str, ...]) -> None:
    for tenant in tenants:
        mart = read_mart(settings, "mart_lead_scores", tenant_id=tenant)
        assert mart.num_rows == GOOD_LEADS, tenant
        assert set(mart.column("tenant_id").to_pylist()) == {tenant}
        served = top_lead_scores(settings, tenant, 100)
        assert len(served) == GOOD_LEADS and {r["tenant_id"] for r in served} == {tenant}
