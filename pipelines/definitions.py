"""The Dagster code location: every asset, check, job, schedule and sensor."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    schedule,
    sensor,
)

from assets.crm_export import crm_export_leads, crm_export_leads_expectations
from assets.partitions import tenant_days, tenants
from assets.raw_tables import raw_tables
from assets.resources import BizosSettings
from assets.serving_tables import serving_lead_scores
from assets.sources import entity_assets, event_assets
from assets.warehouse import bizos_dbt_models, dbt_resource
from core.settings import Settings
from core.tenancy import TENANT_ID_PATTERN
from exports.crm_leads import tenants_with_inbox

events = AssetSelection.assets(*event_assets)

materialize_all = define_asset_job(
    "materialize_all",
    selection=AssetSelection.all() - events,
    partitions_def=tenants,
    description="Everything for one tenant: ingest, load, dbt build and tests, publish. "
    "Event tables load per day in ingest_events_daily.",
)

ingest_events_daily = define_asset_job(
    "ingest_events_daily",
    selection=events,
    partitions_def=tenant_days,
    description="One UTC day of every event table (charges, page views, activities, …) "
    "for one tenant.",
)


@schedule(
    job=materialize_all,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
    """Every known tenant, once a day; the run key makes a tick idempotent."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        RunRequest(partition_key=tenant, run_key=f"{day}:{tenant}")
        for tenant in context.instance.get_dynamic_partitions(tenants.name or "tenants")
    ]


@schedule(
    job=ingest_events_daily,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_events(context: ScheduleEvaluationContext) -> list[RunRequest]:
    """Yesterday (UTC) for every known tenant, once the day is over; the run key makes
    a tick idempotent. Earlier days are a backfill of the same partitions."""
    tenant_ids = context.instance.get_dynamic_partitions(tenants.name or "tenants")
    return previous_day_requests(tenant_ids, context.scheduled_execution_time)


def previous_day_requests(tenant_ids: Sequence[str], scheduled: datetime) -> list[RunRequest]:
    """One ``tenant_days`` run per tenant for the day before ``scheduled``."""
    day = (scheduled - timedelta(days=1)).strftime("%Y-%m-%d")
    return [
        RunRequest(
            partition_key=MultiPartitionKey({"tenant": tenant, "date": day}),
            run_key=f"events:{day}:{tenant}",
        )
        for tenant in tenant_ids
    ]


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING)
def tenant_inboxes(context: SensorEvaluationContext, bizos: BizosSettings) -> SensorResult:
    """A new inbox folder is a new tenant: add its partition and run it once."""
    known = set(context.instance.get_dynamic_partitions(tenants.name or "tenants"))
    found = [t for t in tenants_with_inbox(bizos.get()) if TENANT_ID_PATTERN.match(t)]
    new = [t for t in found if t not in known]
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=t, run_key=f"new-tenant:{t}", job_name=materialize_all.name)
            for t in new
        ],
        dynamic_partitions_requests=[tenants.build_add_request(new)] if new else [],
    )


def build_definitions(settings: Settings | None = None) -> Definitions:
    """Definitions for one environment; tests pass their own settings.

    Without explicit settings the resource reads ``BIZOS_*`` at run time, so the
    database URL (a secret) never becomes resource config shown in the UI.
    """
    if settings is None:
        bizos = BizosSettings()
        settings = bizos.get()
    else:
        bizos = BizosSettings(
            home=str(settings.home),
            database_url=settings.database_url.get_secret_value() if settings.database_url else "",
        )
    return Definitions(
        assets=[
            crm_export_leads,
            raw_tables,
            *entity_assets,
            *event_assets,
            bizos_dbt_models,
            serving_lead_scores,
        ],
        asset_checks=[crm_export_leads_expectations],
        jobs=[materialize_all, ingest_events_daily],
        schedules=[daily_refresh, daily_events],
        sensors=[tenant_inboxes],
        resources={"bizos": bizos, "dbt": dbt_resource(settings)},
    )


defs = build_definitions()
