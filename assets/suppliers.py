"""Dagster wiring for suppliers: the inputs landed from the inbox, the policy, the
reviewers' decisions and the screening matches found in them, all in one
multi-asset; dbt's stg_suppliers__* models read them. The logic is in suppliers/.

The screening is a step of the same multi-asset, not an asset of its own, for the
run's shape: Dagster gives every asset reached through more steps a later step of
the multi-assets below it, so a separate screening asset split the raw copies and
the dbt build in two (one more dbt start, under the warehouse lock, per tenant run).
"""

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

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
from core.contracts.suppliers import INPUT_TABLES, SOURCE
from core.settings import Settings
from core.tenancy import check_tenant_id
from suppliers.landing import (
    TableLoad,
    land_policy,
    land_purchase_orders,
    land_review_decisions,
    land_screening_entries,
    land_suppliers,
    utc_now,
)
from suppliers.matches import screen_tenant
from suppliers.policy import SupplierPolicyError, load_policy
from suppliers.reviews import decisions_for

SCREENING_MATCHES = AssetKey([SOURCE, "screening_matches"])
SCREENING_INPUTS = ("suppliers", "screening_entries", "review_decisions")

DESCRIPTIONS = {
    "suppliers": "supplier records from inbox/<tenant>/suppliers.csv (bad rows quarantined)",
    "screening_entries": "screening list entries from inbox/<tenant>/screening/ "
    "(FollowTheMoney JSON lines or CSV; the list is the file's stem)",
    "purchase_orders": "purchase orders and receipts from inbox/<tenant>/purchase_orders.csv",
    "policy": "the tenant's validated supplier policy (config/suppliers/<tenant>.yaml)",
    "required_documents": "the documents the tenant's policy requires of every supplier",
    "review_decisions": "reviewers' decisions from the ops database (append-only)",
}


@multi_asset(
    name="supplier_inputs",
    specs=[
        AssetSpec(
            AssetKey([SOURCE, table]),
            group_name="suppliers",
            kinds={"parquet"},
            description=f"The tenant's {DESCRIPTIONS[table]}, in the Parquet lake.",
        )
        for table in INPUT_TABLES
    ]
    + [
        AssetSpec(
            SCREENING_MATCHES,
            deps=[AssetKey([SOURCE, t]) for t in SCREENING_INPUTS],
            group_name="suppliers",
            kinds={"python", "parquet"},
            description="Every supplier name and alias screened against the tenant's lists "
            "(normalised, blocked by rarest token skeletons, scored with rapidfuzz and country "
            "agreement); pairs a reviewer ruled 'not the same' are never raised again.",
        )
    ],
    partitions_def=tenants,
    can_subset=True,
)
def supplier_inputs(
    context: AssetExecutionContext, bizos: BizosSettings
) -> Iterator[MaterializeResult]:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    now = utc_now()
    selected = context.selected_asset_keys
    if selected - {SCREENING_MATCHES}:
        yield from _land_inputs(context, settings, tenant_id, now, selected)
    if SCREENING_MATCHES in selected:
        yield _screen(context, settings, tenant_id)


def _land_inputs(
    context: AssetExecutionContext,
    settings: Settings,
    tenant_id: str,
    now: datetime,
    selected: AbstractSet[AssetKey],
) -> Iterator[MaterializeResult]:
    """Land every input table (they are read together), reporting the selected ones."""
    try:
        policy = load_policy(tenant_id)
    except SupplierPolicyError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    loads: list[TableLoad] = [
        land_suppliers(settings, tenant_id, now=now),
        land_screening_entries(settings, tenant_id, now=now),
        land_purchase_orders(settings, tenant_id, now=now),
        land_policy(settings, tenant_id, policy, now=now),
        land_review_decisions(settings, tenant_id, decisions_for(settings, tenant_id), now=now),
    ]
    for load in loads:
        context.log.info(
            f"{tenant_id}: {load.table}: {load.rows} rows from {len(load.files)} file(s), "
            f"{load.rows_quarantined} quarantined"
        )
        metadata: dict[str, Any] = {
            "rows": load.rows,
            "rows_quarantined": load.rows_quarantined,
            "files": MetadataValue.json(load.files),
            "files_skipped": MetadataValue.json(load.files_skipped),
            "files_quarantined": MetadataValue.json(load.files_quarantined),
        }
        required = AssetKey([SOURCE, "required_documents"])
        if load.table == "policy":
            metadata["config_version"] = policy.config_version
            if required in selected:
                yield MaterializeResult(
                    asset_key=required, metadata={"rows": len(policy.required_documents)}
                )
        if AssetKey([SOURCE, load.table]) in selected:
            yield MaterializeResult(asset_key=AssetKey([SOURCE, load.table]), metadata=metadata)


def _screen(
    context: AssetExecutionContext, settings: Settings, tenant_id: str
) -> MaterializeResult:
    run = screen_tenant(settings, tenant_id, run_id=context.run.run_id, now=utc_now())
    context.log.info(
        f"{tenant_id}: {run.suppliers} suppliers against {run.entries} list entries: "
        f"{run.matches} matches ({run.suppressed} pairs ruled out by reviewers)"
    )
    return MaterializeResult(
        asset_key=SCREENING_MATCHES,
        metadata={
            "suppliers": run.suppliers,
            "entries": run.entries,
            "matches": run.matches,
            "suppressed_pairs": run.suppressed,
        },
    )
