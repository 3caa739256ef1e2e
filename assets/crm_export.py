"""Dagster wiring for the CRM export source: the lake asset and its quality check."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.partitions import tenants
from assets.quality_checks import check_result, run_tenants
from assets.resources import BizosSettings
from core.settings import Settings
from core.tenancy import check_tenant_id
from exports.crm_leads import (
    ingest_crm_leads,
    leads_path,
    quarantine_path,
)
from lake.files import parquet_file
from quality.crm_leads import validate_partition
from quality.gates import MAX_QUARANTINED_SHARE, ROW_COUNT, row_count_change
from quality.results import ERROR, CheckRecord, record_results

ASSET_KEY = "crm_export/leads"
EXPECTATIONS_CHECK = "crm_export_leads_expectations"


@asset(
    key=["crm_export", "leads"],
    partitions_def=tenants,
    group_name="integrations",
    kinds={"parquet"},
    description="CRM lead exports from the tenant's inbox, validated, in the Parquet lake. "
    "Rows that cannot be read or fail the quality suite, and unreadable files, go to the "
    "quarantine with their reason; every line is counted as loaded, quarantined or blank.",
)
def crm_export_leads(context: AssetExecutionContext, bizos: BizosSettings) -> MaterializeResult:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    load = ingest_crm_leads(settings, tenant_id)
    context.log.info(
        f"tenant {tenant_id}: {load.rows_loaded} leads loaded, "
        f"{load.rows_quarantined} quarantined from {len(load.files)} file(s); "
        f"lines: {load.lines_read} read, {load.lines_loaded} loaded, "
        f"{load.lines_quarantined} quarantined, {load.lines_blank} blank"
    )
    for skipped in load.files_skipped:
        context.log.warning(f"export skipped: {skipped['path']}: {skipped['reason']}")
    for refused in load.files_quarantined:
        context.log.warning(f"export quarantined as a file: {refused['reason']}")
    return MaterializeResult(
        metadata={
            "files": MetadataValue.json(load.files),
            "files_skipped": MetadataValue.json(load.files_skipped),
            "files_quarantined": MetadataValue.json(load.files_quarantined),
            "rows_in": load.rows_in,
            "rows_loaded": load.rows_loaded,
            "rows_quarantined": load.rows_quarantined,
            "duplicates_dropped": load.duplicates_dropped,
            "lines_read": load.lines_read,
            "lines_loaded": load.lines_loaded,
            "lines_quarantined": load.lines_quarantined,
            "lines_blank": load.lines_blank,
            "bytes": load.bytes_written,
            "lake_path": MetadataValue.path(str(load.lake_path)),
            "quarantine_path": MetadataValue.path(str(load.quarantine_path)),
        }
    )


@asset_check(
    asset=crm_export_leads,
    blocking=True,
    description="Great Expectations suite `crm_leads` over the lake partition; fails too "
    "when more than 20% of the export's rows were quarantined (a broken export). "
    "Blocking: the tenant's raw copy, dbt and publish wait for it.",
)
def crm_export_leads_expectations(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> AssetCheckResult:
    settings = bizos.get()
    records = [
        export_expectations(settings, tenant_id, run_id=context.run.run_id)
        for tenant_id in run_tenants(context)
    ]
    record_results(settings, records)
    return check_result(records)


def export_expectations(settings: Settings, tenant_id: str, *, run_id: str) -> CheckRecord:
    """The export suite over the tenant's partition, and the share it quarantined."""
    lake_path = leads_path(settings, tenant_id)
    if not lake_path.exists():
        return CheckRecord(
            check_name=EXPECTATIONS_CHECK,
            asset_key=ASSET_KEY,
            tenant_id=tenant_id,
            passed=False,
            blocking=True,
            severity=ERROR,
            observed_value="no lake partition",
            details={"reason": "no lake partition"},
            run_id=run_id,
        )
    rows = parquet_file(lake_path).metadata.num_rows
    quarantine = quarantine_path(settings, tenant_id)
    quarantined = parquet_file(quarantine).metadata.num_rows if quarantine.exists() else 0
    outcome = validate_partition(lake_path)
    rows_in = rows + quarantined
    # Quarantined rows are expected now and then; a load that rejects most of
    # its rows (wrong types, no lead id) is a broken export: nothing bad landed,
    # but what landed is not the tenant's leads either.
    share = quarantined / rows_in if rows_in else 0.0
    failed = [e for e in outcome.expectations if not e["success"]]
    return CheckRecord(
        check_name=EXPECTATIONS_CHECK,
        asset_key=ASSET_KEY,
        tenant_id=tenant_id,
        passed=outcome.success and share <= MAX_QUARANTINED_SHARE,
        blocking=True,
        severity=ERROR,
        observed_value=f"{len(failed)} expectations failed; "
        f"{quarantined} of {rows_in} rows quarantined",
        details={
            "rows_checked": rows,
            "rows_quarantined": quarantined,
            "max_quarantined_share": MAX_QUARANTINED_SHARE,
            "expectations": outcome.expectations,
        },
        run_id=run_id,
    )


@asset_check(
    asset=crm_export_leads,
    name=ROW_COUNT,
    blocking=True,
    description="the tenant's lead count against its last passing count: an export "
    "more than BIZOS_QUALITY_MAX_ROW_DROP (default 50%) smaller is a truncated export",
)
def crm_export_leads_row_count(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> AssetCheckResult:
    settings = bizos.get()
    run_id = context.run.run_id
    records = []
    for tenant_id in run_tenants(context):
        lake_path = leads_path(settings, tenant_id)
        rows = parquet_file(lake_path).metadata.num_rows if lake_path.exists() else 0
        records.append(
            row_count_change(
                settings, asset_key=ASSET_KEY, tenant_id=tenant_id, rows=rows, run_id=run_id
            )
        )
    record_results(settings, records)
    return check_result(records)
