"""Run the platform's job from Python (the CLI and the demo), one tenant a run.

Runs go to the Dagster instance under ``BIZOS_HOME/dagster`` (or ``DAGSTER_HOME``),
so ``dagster dev`` shows them afterwards like any scheduled run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterEvent, DagsterInstance, Definitions, MultiPartitionKey

from assets.partitions import tenants
from core.settings import Settings
from core.tenancy import check_tenant_id
from exports.inbox import tenants_with_inbox

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class TenantRun:
    tenant_id: str
    success: bool
    run_id: str
    seconds: float
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)
    error: str | None = None
    log_path: Path | None = None


@contextmanager
def output_to(path: Path | None) -> Iterator[None]:
    """Send this process's stdout/stderr (and its children's: dbt) to a file.

    At the file-descriptor level, because dbt runs as a subprocess and Dagster
    writes to the original streams; ``None`` leaves the output where it is.
    """
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def add_metadata(into: dict[str, dict[str, object]], key: str, metadata: Mapping[str, Any]) -> None:
    """Record an asset's metadata; counts of several runs (days) add up."""
    values = {k: v.value for k, v in metadata.items()}
    seen = into.get(key)
    if seen is None:
        into[key] = values
        return
    for name, value in values.items():
        if isinstance(value, int) and isinstance(seen.get(name), int):
            seen[name] = int(seen[name]) + value  # type: ignore[call-overload]
        else:
            seen[name] = value


def failure_summary(events: Sequence[DagsterEvent]) -> str:
    """``step: message`` of each failed step, from the innermost cause."""
    parts = []
    for event in events:
        if not (event.is_step_failure and event.step_failure_data):
            continue
        error = event.step_failure_data.error
        if error is None:
            continue
        while error.cause is not None:
            error = error.cause
        parts.append(f"{event.step_key}: {error.message.strip()}")
    return "; ".join(parts) or "run failed"


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The persistent instance ``dagster dev`` also uses (telemetry off)."""
    home = os.environ.get("DAGSTER_HOME") or str(settings.home / "dagster")
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        with open(config, "w", encoding="utf-8") as fh:
            fh.write("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = home
    return DagsterInstance.get()


def run_tenants(
    defs: Definitions,
    settings: Settings,
    instance: DagsterInstance,
    *,
    tenant_ids: list[str] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[TenantRun], None] | None = None,
    log_dir: Path | None = None,
    event_days: Sequence[date] = (),
) -> list[TenantRun]:
    """Materialize everything for each tenant (all with an inbox when not given).

    With ``event_days``, each tenant's event tables are also loaded for those
    days (``ingest_events_daily``, one run per day), as the daily schedule does.
    With ``log_dir``, each run's full log (Dagster and dbt) goes to
    ``<log_dir>/<tenant>.log`` instead of the terminal.
    """
    chosen = [check_tenant_id(t) for t in (tenant_ids or tenants_with_inbox(settings))]
    if not chosen:
        raise LookupError(f"no tenant to run: no inbox folder under {settings.inbox_dir}")
    partitions = tenants.name or "tenants"
    known = set(instance.get_dynamic_partitions(partitions))
    instance.add_dynamic_partitions(partitions, [t for t in chosen if t not in known])
    job = defs.resolve_job_def("materialize_all")
    events_job = defs.resolve_job_def("ingest_events_daily")
    results: list[TenantRun] = []
    for tenant_id in chosen:
        if on_start:
            on_start(tenant_id)
        started = time.monotonic()
        log_path = log_dir / f"{tenant_id}.log" if log_dir else None
        with output_to(log_path):
            result = job.execute_in_process(
                partition_key=tenant_id,
                instance=instance,
                raise_on_error=False,
                run_config=QUIET_RUN_CONFIG,
            )
            day_results = [
                events_job.execute_in_process(
                    partition_key=MultiPartitionKey({"tenant": tenant_id, "date": d.isoformat()}),
                    instance=instance,
                    raise_on_error=False,
                    run_config=QUIET_RUN_CONFIG,
                )
                for d in (event_days if result.success else ())
            ]
        run = TenantRun(
            tenant_id=tenant_id,
            success=result.success,
            run_id=result.run_id,
            seconds=time.monotonic() - started,
            log_path=log_path,
        )
        for one in (result, *day_results):
            for event in one.get_asset_materialization_events():
                mat = event.materialization
                if mat is not None:
                    add_metadata(run.metadata, mat.asset_key.to_user_string(), mat.metadata)
            if not one.success:
                run.success = False
                run.error = failure_summary(one.all_events)
        results.append(run)
        if on_done:
            on_done(run)
    return results
