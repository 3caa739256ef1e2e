"""Dagster wiring for the CRM export source: the lake asset and its quality check."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.tenancy import check_tenant_id
from exports.crm_csv import ExportSchemaError
from exports.crm_leads import (
    ingest_crm_leads,
    read_leads,
    read_quarantine,
)
from quality.crm_leads import validate_crm_leads


@asset(
    key=["crm_export", "leads"],
    partitions_def=tenants,
    group_name="integrations",
    kinds={"parquet"},
    description="CRM lead exports from the tenant's inbox, validated, in the Parquet lake. "
    "Rows failing the quality suite go to the quarantine with their reason.",
)
def crm_export_leads(context: AssetExecutionContext, bizos: BizosSettings) -> MaterializeResult:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    try:
        load = ingest_crm_leads(settings, tenant_id)
    except ExportSchemaError as exc:
        # A broken file is the tenant's to fix, not a transient fault: fail
        # clearly (file and column named) and leave the lake as it was.
        raise Failure(description=str(exc), allow_retries=False) from exc
    context.log.info(
        f"tenant {tenant_id}: {load.rows_loaded} leads loaded, "
        f"{load.rows_quarantined} quarantined from {len(load.files)} file(s)"
    )
    return MaterializeResult(
        metadata={
            "files": MetadataValue.json(load.files),
            "rows_in": load.rows_in,
            "rows_loaded": load.rows_loaded,
            "rows_quarantined": load.rows_quarantined,
            "duplicates_dropped": load.duplicates_dropped,
            "bytes": load.bytes_written,
            "lake_path": MetadataValue.path(str(load.lake_path)),
            "quarantine_path": MetadataValue.path(str(load.quarantine_path)),
        }
    )


@asset_check(
    asset=crm_export_leads,
    description="Great Expectations suite `crm_leads` over the lake partition",
)
def crm_export_leads_expectations(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> AssetCheckResult:
    settings = bizos.get()
    tenant_id = context.op_execution_context.partition_key
    leads = read_leads(settings, tenant_id)
    quarantine = read_quarantine(settings, tenant_id)
    quarantined = quarantine.num_rows if quarantine is not None else 0
    if leads is None:
        return AssetCheckResult(passed=False, metadata={"reason": "no lake partition"})
    outcome = validate_crm_leads(leads.to_pandas())
    rows_in = leads.num_rows + quarantined
    # Quarantined rows are expected now and then; a load that rejects most of
    # its rows is a broken export worth an alert even though nothing bad landed.
    severity = AssetCheckSeverity.ERROR if not outcome.success else AssetCheckSeverity.WARN
    passed = outcome.success and (rows_in == 0 or quarantined / rows_in <= 0.2)
    return AssetCheckResult(
        passed=passed,
        severity=severity,
        metadata={
            "rows_checked": leads.num_rows,
            "rows_quarantined": quarantined,
            "expectations": MetadataValue.json(outcome.expectations),
        },
    )
