"""Many tenants' refresh with dbt started twice per batch, not twice per tenant.

Why: a tenant's ``materialize_all`` run starts dbt twice (staging and intermediate,
then the lead model, then the marts), and every dbt build holds the warehouse
writer lock (warehouse/dbt_runs.py). dbt's start-up (~10-20 s of parse, adapter
and graph work on this project) does not depend on how many tenants a build
covers, so per-tenant builds make the refresh cost grow with tenants x start-up,
one after the other behind the lock, however little data each tenant has
(bench/RESULTS.md, "Daily refresh": 24 s of wall per tenant at 50 tenants).

A batch run does the per-tenant work per tenant and the warehouse once:

1. ingest: one Dagster run per tenant of job ``batch_ingest`` (every source, the
   CRM export, suppliers, price lists, the raw copies and their blocking quality
   checks: everything of ``materialize_all`` that is not dbt or after it);
   a tenant whose run fails, or whose blocking check fails, leaves the batch.
   Up to ``BIZOS_MAX_CONCURRENT_RUNS`` tenants' runs at once, each in a worker
   process of its own: most of a small tenant's ingest is waiting on its providers'
   rate limits (SP-API's offers at 0.5 requests/s per seller account: 6 of a 10k-record
   tenant's 13 s), which are per tenant, so tenants wait side by side. Ingest
   touches only the tenant's own lake folders, cursors and raw rows (Postgres's raw
   DDL is serialized by an advisory lock), never the warehouse file.
2. dbt build, phase 1 (everything not downstream of the lead model), once for the
   batch: the tenants go in ``BIZOS_DBT_TENANT_ID`` comma-separated, so incremental
   marts delete and re-insert the batch's rows and tests look at the batch's rows
   (dbt/macros/run_tenant.sql).
3. model fit: one Dagster run per tenant of job ``batch_lead_model``.
4. dbt build, phase 2 (the lead model's downstream: the marts), once for the batch.
5. publish: the serving marts' GX suites once for the batch (a few validations per
   mart, not one per tenant: GX's cost is per expectation evaluated), each tenant's
   verdicts kept; then one Dagster run per tenant of job ``batch_publish``, whose
   blocking ``mart_checks`` report the tenant's verdicts and whose serving tables
   publish only the marts that passed.

A failed batch build is retried tenant by tenant, so one tenant's bad rows fail
that tenant alone, as in per-tenant runs. Every dbt build runs under the same
warehouse writer lock as a tenant run's, so batch and per-tenant runs can share a
warehouse. ``bizos run --batch-size N`` uses it; bench/end_to_end.py measures it.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
)

from assets.lead_model import lead_model
from assets.partitions import tenants as tenant_partitions
from assets.quality_checks import MART_VERDICTS_TAG, batch_mart_records, mart_checks
from assets.serving_tables import serving_table_assets
from assets.warehouse import (
    BUILD_ARGS,
    DBT_DIR,
    bizos_dbt_models,
    dbt_environment,
    ensure_manifest,
    seed_partial_parse,
)
from core.settings import Settings
from core.tenancy import check_tenant_id
from opsdb.tenants import disabled_tenants
from pipelines.housekeeping import clean_up_after_dead_runs, process_tags
from pipelines.runner import QUIET_RUN_CONFIG, TenantRun, add_metadata, failure_summary, output_to
from quality.dbt_results import dbt_test_records
from quality.results import record_results
from warehouse.dbt_runs import (
    TENANT_ENV,
    dbt_run_dir,
    prune_dbt_runs,
    warehouse_lock,
    write_dbt_launcher,
)

LEAD_MODEL_SOURCE = "source:lead_model+"
"""dbt's selector of everything downstream of the lead model's tables: phase 2."""

PHASE_ARGS: dict[str, list[str]] = {
    "dbt_intermediate": ["--exclude", LEAD_MODEL_SOURCE],
    "dbt_marts": ["--select", LEAD_MODEL_SOURCE],
}

batch_ingest = define_asset_job(
    "batch_ingest",
    # Everything a tenant's run does before dbt: the whole graph but dbt's models
    # and all downstream of them (the lead model, the serving tables), with the
    # checks on what is left (the source and CRM export gates).
    selection=AssetSelection.all() - AssetSelection.assets(bizos_dbt_models).downstream(),
    partitions_def=tenant_partitions,
    description="Batch runs, step 1 per tenant: every source, the CRM export, suppliers and "
    "price lists into the lake, the raw copies, their blocking quality checks (no dbt).",
)

batch_lead_model = define_asset_job(
    "batch_lead_model",
    selection=AssetSelection.assets(lead_model),
    partitions_def=tenant_partitions,
    description="Batch runs, step 3 per tenant: fit and score the tenant's lead model, "
    "after the batch's first dbt build.",
)

batch_publish = define_asset_job(
    "batch_publish",
    selection=AssetSelection.assets(*serving_table_assets) | AssetSelection.checks(mart_checks),
    partitions_def=tenant_partitions,
    description="Batch runs, step 5 per tenant: the mart checks (blocking) and the serving "
    "tables, after the batch's second dbt build.",
)

batch_jobs = [batch_ingest, batch_lead_model, batch_publish]

STAGES = ("ingest", "dbt_intermediate", "model_fit", "dbt_marts", "publish")


@dataclass
class BatchRun:
    """What one batch did: each tenant's outcome and each stage's wall seconds."""

    batch_id: str
    tenants: list[TenantRun]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    dbt_builds: int = 0

    @property
    def succeeded(self) -> list[str]:
        return [t.tenant_id for t in self.tenants if t.success]


def split_batches(tenant_ids: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive batches of at most ``size`` tenants (``size`` < 1: one batch)."""
    ids = list(tenant_ids)
    if size < 1:
        return [ids] if ids else []
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def blocking_check_failures(result: ExecuteInProcessResult) -> list[str]:
    """The blocking checks of a run that failed: a run without dbt in it succeeds
    even when one fails (nothing downstream to skip), so the batch asks."""
    failed = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.blocking:
            failed.append(evaluation.asset_check_key.to_user_string())
    return failed


def _execute(
    defs: Definitions,
    job_name: str,
    tenant_id: str,
    instance: DagsterInstance,
    tags: dict[str, str],
    run: TenantRun,
    log_path: Path | None,
) -> None:
    """One tenant's Dagster run of ``job_name``; its outcome is folded into ``run``."""
    started = time.monotonic()
    with output_to(log_path):
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=tenant_id,
            instance=instance,
            raise_on_error=False,
            run_config=QUIET_RUN_CONFIG,
            tags=tags,
        )
    run.seconds += time.monotonic() - started
    run.run_id = run.run_id or result.run_id
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat is not None:
            add_metadata(run.metadata, mat.asset_key.to_user_string(), mat.metadata)
    blocked = blocking_check_failures(result)
    if not result.success:
        run.success = False
        run.error = f"{job_name}: {failure_summary(result.all_events)}"
    elif blocked:
        run.success = False
        run.error = f"{job_name}: blocking check failed: {', '.join(blocked)}"


_worker: tuple[Definitions, DagsterInstance] | None = None
"""A worker process's definitions and Dagster instance, made once when it starts."""


def _start_worker(settings: Settings) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance

    global _worker
    _worker = (build_definitions(settings), dagster_instance(settings))


def _execute_in_worker(
    job_name: str, tenant_id: str, tags: dict[str, str], log_path: Path | None
) -> TenantRun:
    assert _worker is not None, "_start_worker did not run in this process"
    defs, instance = _worker
    run = TenantRun(tenant_id=tenant_id, success=True, run_id="", seconds=0.0)
    _execute(defs, job_name, tenant_id, instance, tags, run, log_path)
    return run


def execute_side_by_side(
    settings: Settings,
    job_name: str,
    runs: Sequence[TenantRun],
    tags: dict[str, str],
    *,
    workers: int,
    on_each: Callable[[TenantRun], None] | None = None,
) -> None:
    """Each tenant's Dagster run of ``job_name``, up to ``workers`` at once in worker
    processes (spawned: Dagster and DuckDB do not survive a fork); outcomes are
    folded into ``runs`` as ``_execute`` does, and ``on_each`` hears of each as it
    ends. A worker that dies fails its tenant only, with the cause."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(runs)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings,),
    ) as pool:
        futures = {
            pool.submit(_execute_in_worker, job_name, run.tenant_id, tags, run.log_path): run
            for run in runs
        }
        for future in as_completed(futures):
            run = futures[future]
            try:
                done = future.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                run.success = False
                run.error = f"{job_name}: worker process failed: {type(exc).__name__}: {exc}"
            else:
                run.seconds += done.seconds
                run.run_id = run.run_id or done.run_id
                for key, values in done.metadata.items():
                    run.metadata.setdefault(key, {}).update(values)
                if not done.success:
                    run.success = False
                    run.error = done.error
            if on_each:
                on_each(run)


def dbt_build(
    settings: Settings,
    tenant_ids: Sequence[str],
    phase: str,
    *,
    batch_id: str,
    log: Callable[[str], None],
    log_path: Path | None = None,
) -> bool:
    """One dbt build of ``phase`` for these tenants, under the warehouse writer lock;
    its test verdicts are kept for each tenant (``ops.check_results``)."""
    ids = [check_tenant_id(t) for t in tenant_ids]
    ensure_manifest()
    prune_dbt_runs(settings, keep=max(settings.dbt_runs_kept - 1, 0))
    target_path = dbt_run_dir(settings, batch_id)
    seed_partial_parse(target_path)
    executable = write_dbt_launcher(settings)
    args = [
        str(executable),
        *BUILD_ARGS,
        *PHASE_ARGS[phase],
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target",
        settings.target.value,
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path),
    ]
    with (
        warehouse_lock(settings, run_id=batch_id, log=log),
        dbt_environment(settings),
        _log_file(log_path) as out,
    ):
        env = {**os.environ, TENANT_ENV: ",".join(ids)}
        proc = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    record_results(settings, dbt_test_records(target_path, tenant_ids=ids, run_id=batch_id))
    return proc.returncode == 0


@contextmanager
def _log_file(path: Path | None) -> Iterator[int | None]:
    if path is None:
        yield subprocess.DEVNULL
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        yield fh.fileno()


def build_or_isolate(
    settings: Settings,
    runs: dict[str, TenantRun],
    phase: str,
    *,
    batch_id: str,
    log: Callable[[str], None],
    log_path: Path | None,
) -> int:
    """Build ``phase`` for the batch's live tenants at once; if that build fails,
    again tenant by tenant, so only the tenants whose build fails alone fail.
    Returns how many dbt builds it took."""
    live = [t for t, r in runs.items() if r.success]
    if not live:
        return 0
    if dbt_build(settings, live, phase, batch_id=batch_id, log=log, log_path=log_path):
        return 1
    builds = 1
    if len(live) == 1:
        runs[live[0]].success = False
        runs[live[0]].error = f"{phase}: dbt build failed (log {log_path})"
        return builds
    log(f"{phase}: the batch's dbt build failed; building its {len(live)} tenants one by one")
    for tenant_id in live:
        builds += 1
        if not dbt_build(
            settings, [tenant_id], phase, batch_id=batch_id, log=log, log_path=log_path
        ):
            runs[tenant_id].success = False
            runs[tenant_id].error = f"{phase}: dbt build failed (log {log_path})"
    return builds


def run_batch(
    defs: Definitions,
    settings: Settings,
    instance: DagsterInstance,
    tenant_ids: Sequence[str],
    *,
    log_dir: Path | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_done: Callable[[TenantRun], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] = print,
    ingest: bool = True,
) -> BatchRun:
    """Refresh these tenants as one batch (see the module docstring).

    ``on_stage`` hears each stage as it starts, ``on_progress`` (stage, tenants done,
    tenants) each tenant's end in the per-tenant stages, ``on_done`` each tenant's
    outcome at the end. ``ingest=False`` starts at the first dbt build, from the lake
    (and on Postgres the raw tables) as the last ingest left them: a rebuild and
    republish after a change to the models or the scoring, without calling providers."""
    ids = [check_tenant_id(t) for t in tenant_ids]
    batch_id = f"batch-{uuid.uuid4().hex[:12]}"
    tags = {**process_tags(), "bizos/batch": batch_id}
    runs = {t: TenantRun(tenant_id=t, success=True, run_id="", seconds=0.0) for t in ids}
    batch = BatchRun(batch_id=batch_id, tenants=list(runs.values()))
    dbt_log = log_dir / f"{batch_id}.dbt.log" if log_dir else None

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        if on_stage:
            on_stage(name)
        started = time.monotonic()
        yield
        batch.stage_seconds[name] = batch.stage_seconds.get(name, 0.0) + (
            time.monotonic() - started
        )

    def per_tenant(
        stage_name: str, job_name: str, *, workers: int = 1, extra: dict[str, str] | None = None
    ) -> None:
        run_tags = {**tags, **(extra or {})}
        live = [run for run in runs.values() if run.success]
        for run in live:
            run.log_path = log_dir / f"{run.tenant_id}.log" if log_dir else None
        ended = 0

        def each(_: TenantRun) -> None:
            nonlocal ended
            ended += 1
            if on_progress:
                on_progress(stage_name, ended, len(live))

        if workers > 1 and len(live) > 1:
            execute_side_by_side(settings, job_name, live, run_tags, workers=workers, on_each=each)
            return
        for run in live:
            _execute(defs, job_name, run.tenant_id, instance, run_tags, run, run.log_path)
            each(run)

    def publish() -> None:
        live = [t for t, r in runs.items() if r.success]
        if not live:
            return
        try:
            record_results(settings, batch_mart_records(settings, live, run_id=batch_id))
        except Exception as exc:  # each tenant's run then checks its own marts
            log(
                f"publish: the batch's mart checks failed ({type(exc).__name__}: {exc}); "
                "checking tenant by tenant"
            )
            per_tenant("publish", batch_publish.name)
            return
        per_tenant("publish", batch_publish.name, extra={MART_VERDICTS_TAG: batch_id})

    for name, work in (
        (
            "ingest",
            lambda: per_tenant("ingest", batch_ingest.name, workers=settings.max_concurrent_runs),
        ),
        ("dbt_intermediate", None),
        ("model_fit", lambda: per_tenant("model_fit", batch_lead_model.name)),
        ("dbt_marts", None),
        ("publish", publish),
    ):
        if name == "ingest" and not ingest:
            continue
        with stage(name):
            if work is not None:
                work()
            else:
                batch.dbt_builds += build_or_isolate(
                    settings, runs, name, batch_id=batch_id, log=log, log_path=dbt_log
                )
    if on_done:
        for run in runs.values():
            on_done(run)
    return batch


def run_tenants_in_batches(
    defs: Definitions,
    settings: Settings,
    instance: DagsterInstance,
    *,
    tenant_ids: list[str],
    batch_size: int,
    log_dir: Path | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_done: Callable[[TenantRun], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] = print,
    ingest: bool = True,
) -> list[BatchRun]:
    """Every given tenant, ``batch_size`` at a time (< 1: all in one batch). Refuses
    disabled tenants, and first cleans up after runs a killed process left behind.
    ``ingest=False``: see ``run_batch``."""
    chosen = [check_tenant_id(t) for t in tenant_ids]
    disabled = disabled_tenants(settings)
    refused = [t for t in chosen if t in disabled]
    if refused:
        raise ValueError(
            f"tenant {', '.join(refused)} is disabled: bizos tenants add {refused[0]} "
            "enables it again"
        )
    if not chosen:
        raise LookupError("no tenant to run")
    clean_up_after_dead_runs(settings, instance)
    partitions = tenant_partitions.name or "tenants"
    known = set(instance.get_dynamic_partitions(partitions))
    instance.add_dynamic_partitions(partitions, [t for t in chosen if t not in known])
    return [
        run_batch(
            defs,
            settings,
            instance,
            batch,
            log_dir=log_dir,
            on_stage=on_stage,
            on_done=on_done,
            on_progress=on_progress,
            log=log,
            ingest=ingest,
        )
        for batch in split_batches(chosen, batch_size)
    ]
