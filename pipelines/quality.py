"""The freshness job and its schedule: freshness must be checked when nothing runs,
since a source that stopped loading produces no run to check it in."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets.partitions import tenants
from assets.quality_checks import FRESHNESS_CHECK_KEYS, TENANT_TAG

check_freshness = define_asset_job(
    "check_freshness",
    selection=AssetSelection.checks(*FRESHNESS_CHECK_KEYS),
    description="Freshness of every source table of one tenant (ops.load_log against the "
    "source's window), kept in ops.check_results; loads nothing. The tenant is the run's "
    f"`{TENANT_TAG}` tag: a check-only job has no asset to carry a partition.",
)


@schedule(
    job=check_freshness,
    cron_schedule="*/30 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def freshness_every_half_hour(context: ScheduleEvaluationContext) -> list[RunRequest]:
    """Every known tenant; the run key makes a tick idempotent."""
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return [
        RunRequest(run_key=f"freshness:{tick}:{tenant}", tags={TENANT_TAG: tenant})
        for tenant in context.instance.get_dynamic_partitions(tenants.name or "tenants")
    ]
