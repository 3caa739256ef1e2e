"""The lead model as a Dagster asset: per tenant, between dbt's intermediate lead
models and its lead marts.

It reads ``int_leads_labelled`` and ``int_lead_touches``, fits the tenant's model
(or the pooled one, or falls back to the rules), and writes the ``lead_model``
tables that dbt's marts read as sources (``meta.dagster.asset_key: [lead_model, <table>]``
in dbt/models/marts/leads/_lead_model__sources.yml), one asset key per table. So one run is dbt
(staging, intermediate) -> this asset -> dbt (marts): Dagster splits the dbt
multi-asset into the two steps around it. The logic is scoring.lead_model.
"""

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.tenancy import check_tenant_id
from scoring.lead_model import run_lead_model
from scoring.store import SCHEMA, TABLES

DESCRIPTIONS = {
    "models": "the model that scores the tenant (own, pooled or rules), its held-out metrics "
    "against the rules, its thresholds",
    "features": "every feature's weight and standardisation",
    "custom_attributes": "what became of each extra export column, and why",
    "calibration": "predicted against observed conversion by decile, model and rules",
    "predictions": "every lead's probability, score, fit and engagement scores (or unknown)",
    "contributions": "every lead's signed reasons, each with its evidence",
}


@multi_asset(
    name="lead_model",
    specs=[
        AssetSpec(
            AssetKey([SCHEMA, table]),
            deps=[AssetKey("int_leads_labelled"), AssetKey("int_lead_touches")],
            group_name="scoring",
            kinds={"python", "scikit-learn"},
            description=f"The tenant's lead model (logistic regression on its labelled leads, "
            f"time-based split; pooled or rules when labels are few): {DESCRIPTIONS[table]}. "
            f"Table {SCHEMA}.{table} of the warehouse.",
        )
        for table in TABLES
    ],
    partitions_def=tenants,
)
def lead_model(context: AssetExecutionContext, bizos: BizosSettings) -> Iterator[MaterializeResult]:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    output = run_lead_model(settings, tenant_id, run_id=context.run.run_id)
    result = output.result
    ev = result.evaluation
    auc = ev.model.auc if ev else None
    rules_auc = ev.rules.auc if ev else None
    context.log.info(
        f"{tenant_id}: {result.kind} {output.model_version} (AUC {auc}, rules {rules_auc}): "
        f"{result.reason}"
    )
    metadata: dict[str, Any] = {
        "model_kind": result.kind,
        "model_version": output.model_version,
        "config_version": output.config_version,
        "reason": result.reason,
        "labels": MetadataValue.json(result.label_counts),
        "features": len(result.model.specs) if result.model else 0,
        "leads_scored": output.tables["predictions"].height
        if "predictions" in output.tables
        else 0,
    }
    if auc is not None and rules_auc is not None:
        metadata["auc"] = MetadataValue.float(auc)
        metadata["rules_auc"] = MetadataValue.float(rules_auc)
    for table in TABLES:
        rows = output.tables[table].height if table in output.tables else 0
        extra = metadata if table == "models" else {}
        yield MaterializeResult(
            asset_key=AssetKey([SCHEMA, table]), metadata={"rows": rows, **extra}
        )
