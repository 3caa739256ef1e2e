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
from pathlib import Path
from typing import Any

import yaml
from dagster import AssetKey, DagsterEvent, DagsterInstance, Definitions
from filelock import FileLock

from assets.partitions import tenants
from core.settings import Settings, Target
from core.tenancy import check_tenant_id
from exports.inbox import tenants_with_inbox
from opsdb.tenants import disabled_tenants
from pipelines.cluster import run_launcher_config
from pipelines.dagster_storage import postgres_storage_entry, storage_entry
from pipelines.housekeeping import clean_up_after_dead_runs, process_tags

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


DAGSTER_SCHEMA = "dagster"
"""Postgres schema of Dagster's own storage (runs, events, schedules): beside the
platform's schemas in the same database, never mixed into them."""
PG_PASSWORD_ENV = "BIZOS_DAGSTER_PG_PASSWORD"
"""dagster.yaml names this variable instead of holding the password itself."""


def storage_config(settings: Settings, home: Path) -> dict[str, Any]:
    """Dagster's storage: Postgres (schema ``dagster``) when ``BIZOS_DATABASE_URL`` is
    set, so run history survives restarts and is shared by every machine; SQLite
    files under ``home`` otherwise, Dagster's own layout. Either way Dagster's own
    storage classes, with the event log's connections kept
    (pipelines/dagster_storage.py)."""
    if settings.target is not Target.POSTGRES:
        return storage_entry(home)
    pg = settings.postgres
    db: dict[str, Any] = {
        "username": pg.user,
        "hostname": pg.host,
        "db_name": pg.dbname,
        "port": pg.port,
        "params": {"options": f"-csearch_path={DAGSTER_SCHEMA}"},
        # dagster-postgres speaks psycopg2 (LISTEN/NOTIFY with its parameter style);
        # SQLAlchemy 2.1's default for postgresql:// is psycopg 3.
        "scheme": "postgresql+psycopg2",
    }
    if pg.password:
        db["password"] = {"env": PG_PASSWORD_ENV}
    return postgres_storage_entry(db)


def instance_config(settings: Settings, home: Path | None = None) -> dict[str, Any]:
    """What the platform needs in dagster.yaml.

    - Storage: see :func:`storage_config` (``home`` is the instance's folder).
    - The run queue starts at most ``max_concurrent_runs`` runs at once, so the
      daily schedule's one run per tenant queues instead of stampeding.
    - No default pool limit: the dbt build step is in pool ``warehouse`` so the UI
      groups it, but one build at a time is enforced by the warehouse writer lock
      (warehouse/dbt_runs.py), which also holds across instances and machines and
      logs who holds it. A pool limit of 1 was tried: in-process runs of separate
      processes then waited on the pool for minutes after the slot was free. The
      source pools do have limits (a provider's rate limit is shared by every
      tenant): dagster.yaml cannot hold a limit per pool, so
      :func:`apply_pool_limits` sets them in the instance's storage.
    - Run monitoring fails runs whose process died (the daemon's counterpart of
      ``pipelines.housekeeping`` for runs it launched).
    - On Kubernetes (``BIZOS_RUN_LAUNCHER=k8s``) each launched run is a Job
      (:func:`pipelines.cluster.run_launcher_config`).
    """
    home = home or Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    config: dict[str, Any] = {
        "telemetry": {"enabled": False},
        "storage": storage_config(settings, home),
        "concurrency": {
            "runs": {"max_concurrent_runs": settings.max_concurrent_runs},
        },
        "run_monitoring": {"enabled": True},
    }
    launcher = run_launcher_config(settings)
    if launcher is not None:
        config["run_launcher"] = launcher
    return config


def write_dagster_config(settings: Settings, home: Path) -> Path:
    """Write dagster.yaml, keeping any other keys an operator added; the keys above
    are set to the platform's values (change them through settings). On Postgres the
    storage schema is created and the password put where dagster.yaml points."""
    home.mkdir(parents=True, exist_ok=True)
    if settings.target is Target.POSTGRES:
        prepare_postgres_storage(settings)
    path = home / "dagster.yaml"
    current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    config = dict(current or {})
    config.update(instance_config(settings, home))
    if config != current:
        tmp = path.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        os.replace(tmp, path)
    return path


def prepare_postgres_storage(settings: Settings) -> None:
    """Create Dagster's schema (Dagster creates its tables, not its schema) and hand
    the password to this process's Dagster through the variable dagster.yaml names."""
    import psycopg

    with psycopg.connect(settings.postgres_url, connect_timeout=10, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {DAGSTER_SCHEMA}")
    if settings.postgres.password:
        os.environ[PG_PASSWORD_ENV] = settings.postgres.password


def source_pool_limits(settings: Settings) -> dict[str, int]:
    """Every source pool and its limit (``BIZOS_SOURCE_CONCURRENCY``)."""
    from assets.sources import source_pool
    from connectors.sources import SOURCES

    return {source_pool(s): settings.source_pool_limit(s) for s in SOURCES}


def apply_pool_limits(settings: Settings, instance: DagsterInstance) -> dict[str, int]:
    """Set each source pool's limit in the instance (what ``dagster instance concurrency
    set`` does), only where it differs, so every process opening the instance agrees."""
    limits = source_pool_limits(settings)
    storage = instance.event_log_storage
    for pool, limit in limits.items():
        info = storage.get_concurrency_info(pool)
        if info.slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
    return limits


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The persistent instance ``dagster dev`` also uses (see :func:`instance_config`)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    # Several `bizos run` started together on a fresh home would each create and
    # stamp Dagster's storage databases at once ("more than one head present"):
    # the first creates them under this lock, the others find them made.
    with FileLock(str(home / ".instance.lock"), timeout=300):
        write_dagster_config(settings, home)
        os.environ["DAGSTER_HOME"] = str(home)
        instance = DagsterInstance.get()
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions(tenants.name or "tenants")
        instance.get_latest_materialization_event(AssetKey("bizos_instance_probe"))
        apply_pool_limits(settings, instance)
    return instance


def run_tenants(
    defs: Definitions,
    settings: Settings,
    instance: DagsterInstance,
    *,
    tenant_ids: list[str] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[TenantRun], None] | None = None,
    log_dir: Path | None = None,
) -> list[TenantRun]:
    """Materialize everything for each tenant (all with an inbox when not given).

    With ``log_dir``, each run's full log (Dagster and dbt) goes to
    ``<log_dir>/<tenant>.log`` instead of the terminal.

    First, runs that a killed process left STARTED are marked failed and the
    temporary files no live run can own are swept (pipelines/housekeeping.py);
    every run is tagged with this process, so a later start can do the same.
    """
    disabled = disabled_tenants(settings)
    if tenant_ids:
        chosen = [check_tenant_id(t) for t in tenant_ids]
        refused = [t for t in chosen if t in disabled]
        if refused:
            raise ValueError(
                f"tenant {', '.join(refused)} is disabled: bizos tenants add {refused[0]} "
                "enables it again"
            )
    else:
        chosen = [t for t in tenants_with_inbox(settings) if t not in disabled]
    if not chosen:
        raise LookupError(
            f"no tenant to run: no inbox folder of an active tenant under {settings.inbox_dir}"
        )
    clean_up_after_dead_runs(settings, instance)
    tags = process_tags()
    partitions = tenants.name or "tenants"
    known = set(instance.get_dynamic_partitions(partitions))
    instance.add_dynamic_partitions(partitions, [t for t in chosen if t not in known])
    job = defs.resolve_job_def("materialize_all")
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
                tags=tags,
            )
        run = TenantRun(
            tenant_id=tenant_id,
            success=result.success,
            run_id=result.run_id,
            seconds=time.monotonic() - started,
            log_path=log_path,
        )
        for one in (result,):
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
