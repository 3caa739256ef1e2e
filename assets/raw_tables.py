"""The Postgres raw copies of the lake tables, the relations dbt's sources name
there: one asset per table (``raw/<source>__<table>``), all in one multi-asset
that runs any subset of them, per tenant, before dbt.

On the embedded target dbt reads the lake Parquet directly, so these steps do
nothing there. The dbt sources point at these keys (``meta.dagster.asset_key``
in the sources YAML), so dbt runs after them on both targets.
"""

from collections.abc import Iterator

from dagster import (
    AssetDep,
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
from core.settings import Target
from core.tenancy import check_tenant_id
from lake.files import lake_root
from warehouse.lake_tables import lake_tables
from warehouse.raw_tables import RawLoadError, RawTable, load_tenant

RAW_TABLES = {AssetKey(["raw", t.name]): t for t in lake_tables()}


def _lake_deps(table: RawTable) -> list[AssetDep]:
    """The lake asset the raw copy reads: it runs after that table's ingest.

    Every lake asset materializes for every tenant, even one that has not
    connected the source (``connected: false``, no rows), so this dependency never
    makes Dagster skip the raw copy or dbt (dagster-io/dagster#9408).
    """
    return [AssetDep(AssetKey([table.source, table.table]))]


@multi_asset(
    name="raw_tables",
    specs=[
        AssetSpec(
            key,
            deps=_lake_deps(table),
            group_name="raw",
            kinds={"postgres"},
            description=f"The tenant's rows of lake/{table.source}/{table.table} copied into "
            f"Postgres `{table.qualified_name}` for dbt. Nothing to do on the embedded target.",
        )
        for key, table in RAW_TABLES.items()
    ],
    partitions_def=tenants,
    can_subset=True,
)
def raw_tables(context: AssetExecutionContext, bizos: BizosSettings) -> Iterator[MaterializeResult]:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
        table = RAW_TABLES[key]
        if settings.target is not Target.POSTGRES:
            yield MaterializeResult(asset_key=key, metadata={"target": "duckdb", "rows": 0})
            continue
        try:
            load = load_tenant(
                settings.postgres_url, table, lake_dir=lake_root(settings), tenant_id=tenant_id
            )
        except RawLoadError as exc:
            # The data, not the moment, is at fault: a retry would fail the same way.
            raise Failure(description=str(exc), allow_retries=False) from exc
        context.log.info(f"{load.table}: {load.rows} rows of tenant {tenant_id}")
        yield MaterializeResult(
            asset_key=key,
            metadata={
                "target": "postgres",
                "rows": load.rows,
                "files": len(load.files),
                "columns_added": MetadataValue.json(load.columns_added),
            },
        )
