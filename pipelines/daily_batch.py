"""The daily refresh in batches: one Dagster run that refreshes every active tenant
``BIZOS_REFRESH_BATCH_SIZE`` at a time on the batch path (pipelines/batch.py).

Why: the per-tenant ``daily_refresh`` starts one ``materialize_all`` run per tenant,
each starting dbt twice behind the warehouse writer lock, so the night grows with
tenants x dbt start-up (bench/RESULTS.md: 100 tenants in 17 min as batches against
37 per tenant). With ``BIZOS_REFRESH_BATCH_SIZE`` set, ``daily_refresh`` skips its
tick and ``daily_batch_refresh`` requests this job instead; unset (0), the reverse.
Either way each tenant's work is its own Dagster run, in its partition, so the UI
still shows each tenant's ingest, model fit and publish; this run is the batch's
conductor: it logs each stage and tenant as they end and fails, naming the tenants
and why, when any tenant failed (the others' scores are published all the same).
"""

from dagster import (
    DefaultScheduleStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    job,
    op,
    schedule,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from opsdb.tenants import runnable

DAILY_CRON = "0 2 * * *"
"""The daily refresh's time, per tenant or in batches: after the sources' daily loads."""


@op(description="Every active tenant on the batch path, BIZOS_REFRESH_BATCH_SIZE at a time.")
def refresh_in_batches(context: OpExecutionContext, bizos: BizosSettings) -> Output[None]:
    from pipelines.batch import run_tenants_in_batches
    from pipelines.definitions import build_definitions

    settings = bizos.get()
    size = settings.refresh_batch_size
    partitions = context.instance.get_dynamic_partitions(tenants.name or "tenants")
    chosen = runnable(settings, partitions)
    if not chosen:
        context.log.info("no active tenant: nothing to refresh")
        return Output(None, metadata={"tenants": 0})
    context.log.info(f"{len(chosen)} tenants, {size or len(chosen)} a batch")

    def progress(stage: str, ended: int, total: int) -> None:
        if ended == total or ended % 10 == 0:
            context.log.info(f"{stage}: {ended}/{total} tenants")

    batches = run_tenants_in_batches(
        build_definitions(settings),
        settings,
        context.instance,
        tenant_ids=chosen,
        batch_size=size,
        log_dir=settings.home / "logs",
        on_stage=lambda stage: context.log.info(f"stage {stage}"),
        on_progress=progress,
        log=context.log.warning,
    )
    runs = [run for batch in batches for run in batch.tenants]
    failed = [run for run in runs if not run.success]
    for batch in batches:
        context.log.info(
            f"{batch.batch_id}: {len(batch.succeeded)}/{len(batch.tenants)} tenants published; "
            + ", ".join(f"{k} {v:.0f} s" for k, v in batch.stage_seconds.items())
        )
    if failed:
        raise Failure(
            description=f"{len(failed)} of {len(runs)} tenants failed: "
            + "; ".join(f"{r.tenant_id}: {r.error}" for r in failed),
            metadata={"failed_tenants": MetadataValue.json([r.tenant_id for r in failed])},
            allow_retries=False,
        )
    return Output(
        None,
        metadata={
            "tenants": len(runs),
            "batches": len(batches),
            "stage_seconds": MetadataValue.json(
                [{k: round(v, 1) for k, v in b.stage_seconds.items()} for b in batches]
            ),
        },
    )


@job(description="The daily refresh in batches (BIZOS_REFRESH_BATCH_SIZE tenants per dbt build).")
def daily_batch_refresh_job() -> None:
    refresh_in_batches()


@schedule(
    job=daily_batch_refresh_job,
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_batch_refresh(
    context: ScheduleEvaluationContext, bizos: BizosSettings
) -> RunRequest | SkipReason:
    """One run for every active tenant when BIZOS_REFRESH_BATCH_SIZE is set; the run
    key makes a tick idempotent."""
    settings = bizos.get()
    if settings.refresh_batch_size < 1:
        return SkipReason("BIZOS_REFRESH_BATCH_SIZE is 0: daily_refresh runs each tenant")
    partitions = context.instance.get_dynamic_partitions(tenants.name or "tenants")
    if not runnable(settings, partitions):
        return SkipReason("no active tenant")
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return RunRequest(
        run_key=f"daily-batch:{tick}",
        tags={"bizos/batch-size": str(settings.refresh_batch_size)},
    )
