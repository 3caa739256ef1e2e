"""Publishing marts to the serving store the API reads."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.tenancy import check_tenant_id
from serving.publish import publish_lead_scores
from warehouse.marts import read_mart


@asset(
    partitions_def=tenants,
    group_name="serving",
    deps=[AssetKey("mart_lead_scores")],
    kinds={"postgres", "duckdb"},
    description="The tenant's lead scores in the serving store (Postgres `serving.lead_scores` "
    "with row-level security, or the embedded serving DuckDB file), swapped in atomically.",
)
def serving_lead_scores(context: AssetExecutionContext, bizos: BizosSettings) -> MaterializeResult:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    rows = read_mart(settings, "mart_lead_scores", tenant_id=tenant_id)
    result = publish_lead_scores(settings, tenant_id, rows)
    return MaterializeResult(
        metadata={
            "rows": result.rows,
            "target": settings.target.value,
            "published_at": str(result.published_at),
        }
    )
