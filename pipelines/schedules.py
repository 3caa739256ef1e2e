"""Per-source jobs and schedules, at each source's cadence, one run per active tenant.

The cadence is a table keyed by source name (``CADENCES``), read over every
integration source in ``connectors.sources.SOURCES`` plus the CRM export, so a new
source gets a job and a schedule of its own at ``DEFAULT_CADENCE`` without a line
here. A source job loads the source's tables for one tenant (the lake is then
current; the daily full refresh, ``materialize_all``, carries it through dbt to the
scores). Documents are not scheduled: the ``supplier_document_arrivals`` sensor runs
a tenant when its documents change.

Every tick asks for one run per tenant partition that is not disabled
(``opsdb.tenants``), with a run key made of the source, the tick and the tenant, so
a tick evaluated twice never starts a run twice.
"""

from __future__ import annotations

from enum import StrEnum

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from connectors.sources import SOURCES
from core.settings import Settings
from opsdb.tenants import runnable


class Cadence(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"


CRON: dict[Cadence, str] = {
    # Off the hour, and the daily one before the 02:00 full refresh, so the
    # refresh finds the sources freshly loaded and does not start with them.
    Cadence.HOURLY: "15 * * * *",
    Cadence.DAILY: "30 1 * * *",
}

CADENCES: dict[str, Cadence] = {
    "stripe": Cadence.HOURLY,
    "crm_api": Cadence.HOURLY,
    "crm_export": Cadence.HOURLY,
    "ga4": Cadence.DAILY,  # GA4's own processing lags by hours: hourly loads add nothing
    "sp_api": Cadence.DAILY,  # catalogs, prices and fees
}
DEFAULT_CADENCE = Cadence.DAILY

CRM_EXPORT = "crm_export"
"""Tenants' CRM export files from the inbox: not an API source, scheduled like one."""


def cadence_of(source: str) -> Cadence:
    return CADENCES.get(source, DEFAULT_CADENCE)


def scheduled_sources() -> list[str]:
    """Every integration source, and the CRM export."""
    return [*SOURCES, CRM_EXPORT]


def source_keys(source: str) -> list[AssetKey]:
    if source == CRM_EXPORT:
        return [AssetKey([CRM_EXPORT, "leads"])]
    return [AssetKey([source, table]) for table in SOURCES[source].tables]


def source_job_name(source: str) -> str:
    return f"{source}_load"


def tenant_run_requests(
    context: ScheduleEvaluationContext, settings: Settings, *, what: str
) -> list[RunRequest]:
    """One run per active tenant partition, keyed by ``what``, the tick and the tenant."""
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    partitions = context.instance.get_dynamic_partitions(tenants.name or "tenants")
    return [
        RunRequest(partition_key=tenant, run_key=f"{what}:{tick}:{tenant}")
        for tenant in runnable(settings, partitions)
    ]


def source_schedule(source: str) -> ScheduleDefinition:
    cadence = cadence_of(source)

    @schedule(
        name=f"{source}_{cadence}",
        job_name=source_job_name(source),
        cron_schedule=CRON[cadence],
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"{source} for every active tenant, {cadence}.",
    )
    def _schedule(context: ScheduleEvaluationContext, bizos: BizosSettings) -> list[RunRequest]:
        return tenant_run_requests(context, bizos.get(), what=source)

    return _schedule


source_jobs = {
    source: define_asset_job(
        source_job_name(source),
        selection=AssetSelection.assets(*source_keys(source)),
        partitions_def=tenants,
        description=f"Load {source} for one tenant into the lake ({cadence_of(source)}); "
        "the daily refresh carries it on to the scores.",
    )
    for source in scheduled_sources()
}
source_schedules = [source_schedule(s) for s in source_jobs]
