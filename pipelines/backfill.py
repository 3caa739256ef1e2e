"""Backfills: a span of UTC days for a set of tenants, one run per tenant.

A backfill is the ordinary job of each tenant's partition, with the window as run
config (``SourceLoadConfig`` of every ingest op it runs: the sources re-read those
days without moving their cursors) and as the tag ``bizos/window``
(``YYYY-MM-DD..YYYY-MM-DD``), which the dbt step turns into
``--vars {window_start, window_end}`` for the incremental marts
(``assets/warehouse.py``). So a three-day backfill of two tenants is two runs that
materialize exactly those two partitions over exactly those days; the other
tenants and the other days are not touched.

The UI does the same by hand: Launchpad of ``materialize_all`` (or ``<source>_load``),
pick the tenant partition, paste the window into the ingest ops' config and add the
tag (docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Definitions

from assets.partitions import tenants
from assets.sources import SourceLoadConfig
from connectors.sources import SOURCES, get_source
from core.run_window import WINDOW_TAG, DayWindow
from core.settings import Settings
from core.tenancy import check_tenant_id
from opsdb.tenants import disabled_tenants
from pipelines.housekeeping import clean_up_after_dead_runs, process_tags
from pipelines.runner import (
    QUIET_RUN_CONFIG,
    TenantRun,
    add_metadata,
    failure_summary,
    output_to,
)
from pipelines.schedules import source_job_name


def check_window(since: str, until: str | None) -> DayWindow:
    """The backfill's window; ValueError naming the option when a day is bad."""
    config = SourceLoadConfig(since=since, until=until)
    window = config.window()  # the same checks as `bizos ingest --since/--until`
    assert window is not None
    last = date.fromisoformat(until) if until else window[1].date()
    return DayWindow(date.fromisoformat(since), last)


def backfill_plan(
    source: str | None, window: DayWindow
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(job name, run config, tags) of one tenant's backfill run."""
    sources = [get_source(source).name] if source else list(SOURCES)
    window_config = {"since": window.since.isoformat(), "until": window.until.isoformat()}
    run_config = {
        **QUIET_RUN_CONFIG,
        "ops": {f"{s}_ingest": {"config": window_config} for s in sources},
    }
    job = source_job_name(source) if source else "materialize_all"
    return job, run_config, {WINDOW_TAG: window.tag}


def backfill(
    defs: Definitions,
    settings: Settings,
    instance: DagsterInstance,
    *,
    tenant_ids: Sequence[str],
    since: str,
    until: str | None,
    source: str | None = None,
    on_done: Callable[[TenantRun], None] | None = None,
    log_dir: Path | None = None,
) -> list[TenantRun]:
    """Run each tenant's job over the window, one after the other; a tenant that
    fails is reported and the next one runs."""
    if not tenant_ids:
        raise ValueError("name the tenants to backfill: --tenant a --tenant b")
    chosen = list(dict.fromkeys(check_tenant_id(t) for t in tenant_ids))
    window = check_window(since, until)
    known = set(instance.get_dynamic_partitions(tenants.name or "tenants"))
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise ValueError(
            f"not a tenant partition: {', '.join(unknown)} (bizos tenants add {unknown[0]})"
        )
    disabled = sorted(set(chosen) & disabled_tenants(settings))
    if disabled:
        raise ValueError(f"tenant {', '.join(disabled)} is disabled: nothing backfilled")
    job_name, run_config, tags = backfill_plan(source, window)
    job = defs.resolve_job_def(job_name)
    clean_up_after_dead_runs(settings, instance)
    results = []
    for tenant_id in chosen:
        started = time.monotonic()
        log_path = log_dir / f"{tenant_id}.backfill.log" if log_dir else None
        with output_to(log_path):
            result = job.execute_in_process(
                partition_key=tenant_id,
                instance=instance,
                raise_on_error=False,
                run_config=run_config,
                tags={**process_tags(), **tags},
            )
        run = TenantRun(
            tenant_id=tenant_id,
            success=result.success,
            run_id=result.run_id,
            seconds=time.monotonic() - started,
            log_path=log_path,
        )
        for event in result.get_asset_materialization_events():
            if event.materialization is not None:
                mat = event.materialization
                add_metadata(run.metadata, mat.asset_key.to_user_string(), mat.metadata)
        if not result.success:
            run.error = failure_summary(result.all_events)
        results.append(run)
        if on_done:
            on_done(run)
    return results
