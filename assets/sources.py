"""Dagster wiring for the API integration sources: one asset per source table.

Each source has up to two multi-assets, each loading its tables from one client,
in order, and each subsettable to any of its tables:

- ``<source>_ingest``: the entity tables (customers, leads, orders, …), which
  change after they are created. Partitioned by tenant; each run loads from the
  table's incremental cursor.
- ``<source>_events``: the event tables (charges, page views, activities, …),
  stamped once and never changed. Partitioned by tenant and UTC day
  (``tenant_days``); a run loads exactly that day's window, without touching the
  cursor, so any day can be reloaded or backfilled on its own.

A tenant that has not connected a source (no stored credential) skips it: the
tables are ``skippable``, so the run goes on with the sources the tenant does use.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    RetryRequested,
    multi_asset,
)

import credentials
from assets.partitions import tenant_days, tenants
from assets.resources import BizosSettings
from connectors.connector import Window
from connectors.http_client import ConnectorError
from connectors.ingest import run_source
from connectors.sources import SOURCES, get_source
from connectors.state import LoadInProgress
from core.settings import Settings
from core.tenancy import check_tenant_id


def table_key(source: str, table: str) -> AssetKey:
    return AssetKey([source, table])


def is_connected(settings: Settings, tenant_id: str, source: str) -> bool:
    listed = credentials.list_credentials(settings, tenant_id)
    return any(c.source == source for c in listed)


def day_window(day: date) -> Window:
    """``[midnight, next midnight)`` of a UTC day."""
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def tenant_day(partition_key: str) -> tuple[str, date]:
    """The tenant and day of a ``tenant_days`` partition key."""
    key = (
        partition_key
        if isinstance(partition_key, MultiPartitionKey)
        else tenant_days.get_partition_key_from_str(partition_key)
    )
    keys = key.keys_by_dimension
    return check_tenant_id(keys["tenant"]), date.fromisoformat(keys["date"])


def _spec(source: str, table: str, how: str) -> AssetSpec:
    spec = get_source(source).tables[table]
    return AssetSpec(
        table_key(source, table),
        group_name="integrations",
        kinds={"parquet"},
        skippable=True,
        description=f"{source} `{table}` for the tenant, landed in the lake "
        f"(lake/{spec.source}/{table}/tenant=…/date=…), {how}.",
    )


def _load(
    context: AssetExecutionContext,
    settings: Settings,
    *,
    source: str,
    tenant_id: str,
    window: Window | None,
) -> Iterator[MaterializeResult]:
    """Load the selected tables of ``source`` for the tenant; skipped when not connected."""
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
            window=window,
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


def build_entity_assets(source: str) -> AssetsDefinition | None:
    """The source's entity tables, per tenant, from their cursors; None if it has none."""
    definition = get_source(source)
    tables = [t for t in definition.tables if t not in definition.event_tables]
    if not tables:
        return None

    @multi_asset(
        name=f"{source}_ingest",
        specs=[_spec(source, t, "loaded incrementally from its cursor") for t in tables],
        partitions_def=tenants,
        can_subset=True,
    )
    def _ingest(
        context: AssetExecutionContext, bizos: BizosSettings
    ) -> Iterator[MaterializeResult]:
        tenant_id = check_tenant_id(context.partition_key)
        yield from _load(context, bizos.get(), source=source, tenant_id=tenant_id, window=None)

    return _ingest


def build_event_assets(source: str) -> AssetsDefinition | None:
    """The source's event tables, per tenant and UTC day; None if it has none."""
    definition = get_source(source)
    tables = [t for t in definition.tables if t in definition.event_tables]
    if not tables:
        return None

    @multi_asset(
        name=f"{source}_events",
        specs=[_spec(source, t, "one UTC day per partition") for t in tables],
        partitions_def=tenant_days,
        can_subset=True,
    )
    def _events(
        context: AssetExecutionContext, bizos: BizosSettings
    ) -> Iterator[MaterializeResult]:
        tenant_id, day = tenant_day(context.partition_key)
        yield from _load(
            context, bizos.get(), source=source, tenant_id=tenant_id, window=day_window(day)
        )

    return _events


entity_assets = [a for a in map(build_entity_assets, SOURCES) if a is not None]
event_assets = [a for a in map(build_event_assets, SOURCES) if a is not None]
source_assets = [*entity_assets, *event_assets]
