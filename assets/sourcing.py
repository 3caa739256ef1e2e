"""Dagster wiring for sourcing inputs: the tenant's supplier price lists landed from the
inbox, and its sourcing assumptions (one multi-asset); dbt's stg_price_lists__* models
read them. The logic is in sourcing/."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.contracts.price_lists import SOURCE
from core.tenancy import check_tenant_id
from sourcing.assumptions import SourcingConfigError, load_assumptions
from sourcing.price_list_landing import land_assumptions, land_price_lists
from suppliers.landing import utc_now


@multi_asset(
    name="price_list_inputs",
    specs=[
        AssetSpec(
            AssetKey([SOURCE, "items"]),
            group_name="sourcing",
            kinds={"parquet"},
            description="Supplier price-list rows from inbox/<tenant>/price_lists/*.csv|*.xlsx "
            "(identifiers checked, bad rows quarantined with file and line), in the Parquet lake.",
        ),
        AssetSpec(
            AssetKey([SOURCE, "assumptions"]),
            group_name="sourcing",
            kinds={"parquet"},
            description="The tenant's sourcing assumptions (config/sourcing/<tenant>.yaml): "
            "marketplace, exchange rates, freight per kg, duty.",
        ),
    ],
    partitions_def=tenants,
)
def price_list_inputs(
    context: AssetExecutionContext, bizos: BizosSettings
) -> Iterator[MaterializeResult]:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    now = utc_now()
    try:
        assumptions = load_assumptions(tenant_id)
    except SourcingConfigError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    load = land_price_lists(settings, tenant_id, assumptions, now=now)
    context.log.info(
        f"{tenant_id}: price lists: {load.rows} rows from {len(load.files)} file(s), "
        f"{load.rows_quarantined} quarantined"
    )
    yield MaterializeResult(
        asset_key=AssetKey([SOURCE, "items"]),
        metadata={
            "rows": load.rows,
            "rows_quarantined": load.rows_quarantined,
            "files": MetadataValue.json(load.files),
            "files_skipped": MetadataValue.json(load.files_skipped),
            "files_quarantined": MetadataValue.json(load.files_quarantined),
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey([SOURCE, "assumptions"]),
        metadata={
            "rows": land_assumptions(settings, tenant_id, assumptions, now=now),
            "config_version": assumptions.config_version,
            "marketplace_id": assumptions.marketplace_id,
        },
    )
