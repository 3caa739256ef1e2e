"""Dagster wiring for the API integration sources: one asset per source table.

Each source is one multi-asset, ``<source>_ingest``, loading its tables from one
client, in order, subsettable to any of them, partitioned by tenant. Every table
(entities such as customers and events such as page views alike) loads from its
incremental cursor; a table's first load, with no cursor, reads its whole
history. Run config (``SourceLoadConfig``: ``since``/``until``) reloads a span of
days instead, without moving the cursors. The backfill policy is a single run,
so a backfill over many tenants from the UI is one run, not one per tenant.

A tenant that has not connected a source (no stored credential) loads nothing
from it: its tables still report a materialization, with ``connected: false``
and no rows, rather than being skipped, because Dagster skips every step
downstream of a skipped output (dagster-io/dagster#9408) and the Postgres raw
copies and dbt must still run for the sources the tenant does use.
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    Config,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    RetryRequested,
    multi_asset,
)
from pydantic import Field

import credentials
from assets.partitions import tenants
from assets.resources import BizosSettings
from connectors.connector import LoadResult, Window, days_window
from connectors.http_client import ConnectorError, SourceUnavailable
from connectors.ingest import run_source
from connectors.sources import SOURCES, get_source
from connectors.state import LoadInProgress
from core.settings import Settings
from core.tenancy import check_tenant_id


class SourceLoadConfig(Config):
    """How a run loads a source: from the cursors (default), or a span of UTC days."""

    since: str | None = Field(
        default=None,
        description="Reload from this UTC day (YYYY-MM-DD) instead of the cursor; the "
        "cursor does not move and the merge by primary key makes the overlap harmless.",
    )
    until: str | None = Field(
        default=None, description="Last UTC day (YYYY-MM-DD, included) of the reload."
    )
    keywords: str | None = Field(
        default=None,
        description="SP-API only: comma-separated catalog search phrases added to the "
        "tenant's sourcing keywords for this run.",
    )

    def options(self) -> dict[str, Any]:
        """Per-run source options (the SP-API keywords), none when not given."""
        return {"keywords": self.keywords} if self.keywords else {}

    def window(self, now: datetime | None = None) -> Window | None:
        """The load window, or None for a load from the cursors; ValueError if bad."""
        return days_window(
            parse_day(self.since, "since"), parse_day(self.until, "until"), now=now or _now()
        )


def _now() -> datetime:
    return datetime.now(UTC)


def parse_day(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` day, or ValueError naming the option."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--{name} {value!r} is not a day: use YYYY-MM-DD") from None


def table_key(source: str, table: str) -> AssetKey:
    return AssetKey([source, table])


def is_connected(settings: Settings, tenant_id: str, source: str) -> bool:
    listed = credentials.list_credentials(settings, tenant_id)
    return any(c.source == source for c in listed)


def _spec(source: str, table: str, how: str) -> AssetSpec:
    spec = get_source(source).tables[table]
    return AssetSpec(
        table_key(source, table),
        group_name="integrations",
        kinds={"parquet"},
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
    options: dict[str, Any] | None = None,
) -> list[LoadResult]:
    """Load the selected tables of ``source`` for one tenant; [] when not connected."""
    if not is_connected(settings, tenant_id, source):
        context.log.info(f"tenant {tenant_id} has not connected {source}: skipped")
        return []
    tables = [k.path[-1] for k in context.selected_asset_keys]
    try:
        secret = credentials.get_secret(
            settings, tenant_id=tenant_id, source=source, actor=f"dagster:{context.run_id}"
        )
        return run_source(
            settings,
            tenant_id=tenant_id,
            source=source,
            secret=secret,
            base_url=settings.base_url(source),
            tables=tables,
            run_id=context.run_id,
            window=window,
            options=options,
        )
    except LoadInProgress as exc:
        # Another run holds this tenant's table (a backfill, a manual ingest):
        # try again shortly instead of failing the tenant's run.
        raise RetryRequested(max_retries=3, seconds_to_wait=30) from exc
    except (ConnectorError, credentials.CredentialError) as exc:
        # Messages name tenant and source and never the secret. Only what may pass
        # is retried (SOURCE_RETRY): a refused credential, a rejected request or
        # pages that are not the documented shape fail the same way next time.
        raise Failure(description=str(exc), allow_retries=is_transient(exc)) from exc


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    SourceUnavailable,
    credentials.CredentialStoreUnavailable,
)
"""The provider kept failing past the client's own retries (429/5xx/transport), or
the ops database was unreachable: worth another try minutes later."""

SOURCE_RETRY = RetryPolicy(
    max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
"""Step retries for transient errors: 30 s, 60 s, 120 s, each +/- jitter, so tenants
that failed together against one provider do not come back together. The HTTP
client already retries each request (seconds apart); this covers an outage."""


def source_pool(source: str) -> str:
    """The Dagster pool of a source's ingest steps; its limit is the source's setting
    (``BIZOS_SOURCE_CONCURRENCY``), applied by ``pipelines.runner.apply_pool_limits``."""
    return f"source_{source}"


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def table_results(source: str, loads: list[LoadResult]) -> Iterator[MaterializeResult]:
    """One materialization per table, summed over the run's tenants (a single-run
    backfill loads several), with each tenant's cursors."""
    by_table: dict[str, list[LoadResult]] = defaultdict(list)
    for load in loads:
        by_table[load.table].append(load)
    for table, results in by_table.items():
        metadata: dict[str, Any] = {
            name: sum(getattr(r, attr) for r in results)
            for name, attr in (
                ("rows_in", "rows_in"),
                ("rows_loaded", "rows_loaded"),
                ("rows_added", "rows_added"),
                ("rows_quarantined", "rows_quarantined"),
                ("pages", "pages"),
                ("bytes", "bytes_written"),
            )
        }
        metadata["duration_s"] = round(sum(r.duration_s for r in results), 3)
        metadata["partitions"] = MetadataValue.json(
            sorted({p for r in results for p in r.partitions})
        )
        metadata["tenants"] = MetadataValue.json(
            {
                r.tenant_id: {"cursor_before": r.cursor_before, "cursor_after": r.cursor_after}
                for r in results
            }
        )
        if len(results) == 1:
            metadata["cursor_before"] = MetadataValue.json(results[0].cursor_before or {})
            metadata["cursor_after"] = MetadataValue.json(results[0].cursor_after or {})
        yield MaterializeResult(asset_key=table_key(source, table), metadata=metadata)


def build_source_assets(source: str) -> AssetsDefinition:
    """Every table of the source, per tenant, from their cursors or a window."""
    definition = get_source(source)

    @multi_asset(
        name=f"{source}_ingest",
        specs=[
            _spec(
                source,
                t,
                "loaded incrementally from its cursor (the first load reads its whole history)"
                if definition.read_by_time
                else "read as it stands on every run (SP-API: the catalog, then each item's "
                "offers and fees once a day)",
            )
            for t in definition.tables
        ],
        partitions_def=tenants,
        can_subset=True,
        pool=source_pool(source),
        retry_policy=SOURCE_RETRY,
    )
    def _ingest(
        context: AssetExecutionContext, config: SourceLoadConfig, bizos: BizosSettings
    ) -> Iterator[MaterializeResult]:
        try:
            window = config.window()
        except ValueError as exc:
            raise Failure(description=str(exc), allow_retries=False) from None
        settings = bizos.get()
        loads: list[LoadResult] = []
        for key in context.partition_keys:
            tenant_id = check_tenant_id(key)
            loads += _load(
                context,
                settings,
                source=source,
                tenant_id=tenant_id,
                window=window,
                options=config.options(),
            )
        yield from table_results(source, loads)
        loaded = {load.table for load in loads}
        for key in context.selected_asset_keys:
            if key.path[-1] not in loaded:
                yield MaterializeResult(
                    asset_key=key, metadata={"connected": False, "rows_loaded": 0}
                )

    return _ingest


source_assets = [build_source_assets(s) for s in SOURCES]
