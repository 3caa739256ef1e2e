"""The Dagster code location: every asset, check, job, schedule and sensor."""

import json

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from assets.crm_export import (
    crm_export_leads,
    crm_export_leads_expectations,
    crm_export_leads_row_count,
)
from assets.lead_model import lead_model
from assets.partitions import tenants
from assets.quality_checks import quality_checks
from assets.raw_tables import raw_tables
from assets.resources import BizosSettings
from assets.serving_tables import serving_table_assets
from assets.sources import source_assets
from assets.sourcing import price_list_inputs
from assets.supplier_docs import supplier_docs_read, supplier_document_arrivals
from assets.suppliers import supplier_inputs
from assets.warehouse import bizos_dbt_models, dbt_resource
from core.settings import Settings
from exports.inbox import scan_inbox
from opsdb.tenants import disabled_tenants
from pipelines.alerts import alert_sensors
from pipelines.batch import batch_jobs
from pipelines.cluster import step_executor
from pipelines.daily_batch import DAILY_CRON, daily_batch_refresh, daily_batch_refresh_job
from pipelines.quality import check_freshness, freshness_every_half_hour
from pipelines.schedules import source_jobs, source_schedules, tenant_run_requests
from suppliers.reviews import latest_decision_ids

materialize_all = define_asset_job(
    "materialize_all",
    selection=AssetSelection.all(),
    partitions_def=tenants,
    description="Everything for one tenant: ingest every source table from its cursor "
    "(the first load reads the whole history), load, dbt build and tests, publish.",
)


refresh_suppliers = define_asset_job(
    "refresh_suppliers",
    selection=AssetSelection.assets(supplier_inputs).downstream(),
    partitions_def=tenants,
    description="One tenant's supplier inputs, screening, raw copies, supplier models and "
    "their serving tables: what a new review decision changes.",
)


@schedule(
    job=materialize_all,
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_refresh(
    context: ScheduleEvaluationContext, bizos: BizosSettings
) -> list[RunRequest] | SkipReason:
    """Every active tenant, once a day, a run each; the run key makes a tick
    idempotent. With BIZOS_REFRESH_BATCH_SIZE set, ``daily_batch_refresh`` runs them
    in batches instead (pipelines/daily_batch.py)."""
    settings = bizos.get()
    if settings.refresh_batch_size > 0:
        return SkipReason("BIZOS_REFRESH_BATCH_SIZE is set: daily_batch_refresh runs the tenants")
    return tenant_run_requests(context, settings, what="daily")


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING)
def tenant_inboxes(context: SensorEvaluationContext, bizos: BizosSettings) -> SensorResult:
    """A new inbox folder is a new tenant: add its partition and run it once."""
    known = set(context.instance.get_dynamic_partitions(tenants.name or "tenants"))
    scan = scan_inbox(bizos.get())
    for refused in scan.refused:
        context.log.warning(f"inbox folder skipped: {refused}")
    disabled = disabled_tenants(bizos.get())
    new = [t for t in scan.tenants if t not in known and t not in disabled]
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=t, run_key=f"new-tenant:{t}", job_name=materialize_all.name)
            for t in new
        ],
        dynamic_partitions_requests=[tenants.build_add_request(new)] if new else [],
    )


@sensor(
    job=refresh_suppliers, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING
)
def supplier_reviews(context: SensorEvaluationContext, bizos: BizosSettings) -> SensorResult:
    """A new review decision refreshes its tenant's supplier marts (an approval changes
    the review status, a "not the same" verdict drops the match). The cursor is the
    newest decision id seen per tenant; the run key makes a tick idempotent."""
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    latest = latest_decision_ids(bizos.get())
    known = set(context.instance.get_dynamic_partitions(tenants.name or "tenants"))
    disabled = disabled_tenants(bizos.get())
    requests = [
        RunRequest(partition_key=tenant, run_key=f"reviews:{tenant}:{newest}")
        for tenant, newest in sorted(latest.items())
        if newest > seen.get(tenant, 0) and tenant in known and tenant not in disabled
    ]
    # A tenant that is not a partition yet keeps its old position: its decisions are
    # picked up once it is one.
    cursor = {**seen, **{t: n for t, n in latest.items() if t in known and t not in disabled}}
    return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


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
            *source_assets,
            supplier_docs_read,
            bizos_dbt_models,
            lead_model,
            supplier_inputs,
            price_list_inputs,
            *serving_table_assets,
        ],
        asset_checks=[crm_export_leads_expectations, crm_export_leads_row_count, *quality_checks],
        jobs=[
            materialize_all,
            refresh_suppliers,
            check_freshness,
            *source_jobs.values(),
            *batch_jobs,
            daily_batch_refresh_job,
        ],
        schedules=[
            daily_refresh,
            daily_batch_refresh,
            freshness_every_half_hour,
            *source_schedules,
        ],
        sensors=[tenant_inboxes, supplier_document_arrivals, supplier_reviews, *alert_sensors],
        resources={"bizos": bizos, "dbt": dbt_resource(settings)},
        executor=step_executor(settings),
    )


defs = build_definitions()
