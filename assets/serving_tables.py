"""Publishing marts to the serving store the API reads: one asset per serving contract."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    asset,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.contracts.serving_tables import SERVING_TABLES
from core.contracts.table import TableContract
from core.tenancy import check_tenant_id
from serving.publish import publish_table
from warehouse.marts import read_mart


def serving_table_asset(contract: TableContract) -> AssetsDefinition:
    """The asset ``serving_<table>``: reads the tenant's mart rows and publishes them."""

    @asset(
        name=f"serving_{contract.name}",
        partitions_def=tenants,
        group_name="serving",
        deps=[AssetKey(contract.mart)],
        kinds={"postgres", "duckdb"},
        description=f"{contract.description or contract.name}, for the tenant, in the serving "
        f"store (Postgres `serving.{contract.name}` with row-level security, or the embedded "
        f"store's `{contract.name}/tenant=<id>.parquet`), swapped in atomically per tenant.",
    )
    def _publish(context: AssetExecutionContext, bizos: BizosSettings) -> MaterializeResult:
        settings = bizos.get()
        tenant_id = check_tenant_id(context.partition_key)
        rows = read_mart(settings, contract, tenant_id=tenant_id)
        result = publish_table(settings, contract, tenant_id, rows)
        return MaterializeResult(
            metadata={
                "rows": result.rows,
                "rows_replaced": result.rows_replaced,
                "target": settings.target.value,
                "published_at": str(result.published_at),
            }
        )

    return _publish


serving_table_assets: list[AssetsDefinition] = [
    serving_table_asset(contract) for contract in SERVING_TABLES.values()
]
