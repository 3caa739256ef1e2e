"""Dagster wiring for the API integration sources: one asset per source table.

Each source is one multi-asset (its tables load from one client, in order), can
be subset to any of its tables, and is partitioned by tenant. A tenant that has
not connected a source (no stored credential) skips it: the tables are
``skippable``, so the run goes on with the sources the tenant does use.
"""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    multi_asset,
)

import credentials
from assets.integrations.connector_state import LoadInProgress
from assets.integrations.http_client import ConnectorError
from assets.integrations.ingest import run_source
from assets.integrations.sources import SOURCES, get_source
from pipelines.partitions import check_tenant_id, tenants
from pipelines.resources import BizosSettings
from pipelines.settings import Settings


def table_key(source: str, table: str) -> AssetKey:
    return AssetKey([source, table])


def is_connected(settings: Settings, tenant_id: str, source: str) -> bool:
    listed = credentials.list_credentials(settings, tenant_id)
    return any(c.source == source for c in listed)


def build_source_assets(source: str) -> AssetsDefinition:
    definition = get_source(source)
    specs = [
        AssetSpec(
            table_key(source, table),
            group_name="integrations",
            kinds={"parquet"},
            skippable=True,
            description=f"{source} `{table}` for the tenant, landed in the lake "
            f"(lake/{spec.source}/{table}/tenant=…/date=…), loaded incrementally from its cursor.",
        )
        for table, spec in definition.tables.items()
    ]

    @multi_asset(
        name=f"{source}_ingest",
        specs=specs,
        partitions_def=tenants,
        can_subset=True,
    )
    def _ingest(
        context: AssetExecutionContext, bizos: BizosSettings
    ) -> Iterator[MaterializeResult]:
        settings = bizos.get()
        tenant_id = check_tenant_id(context.partition_key)
        if not is_connected(settings, tenant_id, source):
            context.log.info(f"tenant {tenant_id} has not connected {source}: skipped")
            return
        tables = [k.path[-1] for k in context.selected_asset_keys]
        try:
            secret = credentials.get_secret(
                settings, tenant_id=tenant_id, source=source, actor=f"dagster:{context.run_id}"
            )
            results = run_source(
                settings,
                tenant_id=tenant_id,
                source=source,
                secret=secret,
                base_url=settings.base_url(source),
                tables=tables,
                run_id=context.run_id,
            )
        except LoadInProgress as exc:
            # Another run holds this tenant's table (a backfill, a manual ingest):
            # try again shortly instead of failing the tenant's run.
            raise RetryRequested(max_retries=3, seconds_to_wait=30) from exc
        except (ConnectorError, credentials.CredentialError) as exc:
            # Messages name tenant and source and never the secret.
            raise Failure(description=str(exc)) from exc
        for result in results:
            yield MaterializeResult(
                asset_key=table_key(source, result.table),
                metadata={
                    "rows_in": result.rows_in,
                    "rows_loaded": result.rows_loaded,
                    "rows_added": result.rows_added,
                    "rows_quarantined": result.rows_quarantined,
                    "pages": result.pages,
                    "bytes": result.bytes_written,
                    "cursor_before": MetadataValue.json(result.cursor_before or {}),
                    "cursor_after": MetadataValue.json(result.cursor_after or {}),
                    "duration_s": round(result.duration_s, 3),
                    "partitions": MetadataValue.json(result.partitions),
                },
            )

    return _ingest


source_assets = [build_source_assets(name) for name in SOURCES]
