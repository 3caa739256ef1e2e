"""``run_source``: one source for one tenant, table by table. The one entry point
the Dagster assets (one per table) and ``bizos ingest`` both call."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from connectors.connector import (
    DEFAULT_BATCH_SIZE,
    LoadResult,
    ProgressCallback,
    Window,
    check_window,
    load_table,
    open_client,
)
from connectors.http_client import RequestPolicy
from connectors.sources import get_source
from connectors.state import connector_state
from core.settings import Settings
from core.tenancy import check_tenant_id


def run_source(
    settings: Settings,
    *,
    tenant_id: str,
    source: str,
    secret: str,
    base_url: str,
    tables: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    run_id: str | None = None,
    policy: RequestPolicy | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    page_size: int | None = None,
    full_refresh: bool = False,
    options: Mapping[str, Any] | None = None,
    window: Window | None = None,
) -> list[LoadResult]:
    """Load ``tables`` (default: all of the source's) for one tenant, in the source's order.

    Each table is loaded from its own cursor and logged in the load log. The
    first table that fails stops the run and its error is raised (a
    ``ConnectorError`` naming tenant and source, never the secret); the tables
    before it stay loaded. ``secret`` is the tenant's stored credential for
    this source; ``base_url`` where the source is served (the sandbox, or the
    provider); ``options`` non-secret per-tenant settings of the source (the GA4
    ``property_id`` when the credential does not carry it). ``window``
    (``[start, end)``, time-zone aware) loads only the records of that span,
    leaving the cursors where they are.
    """
    check_tenant_id(tenant_id)
    definition = get_source(source)
    asked = list(tables) if tables is not None else list(definition.tables)
    unknown = [t for t in asked if t not in definition.tables]
    if unknown:
        raise ValueError(
            f"unknown table(s) {', '.join(unknown)} for source {source!r}: "
            f"one of {', '.join(definition.tables)}"
        )
    # In the source's order, however they were asked for (Dagster passes a set): a
    # table may read one loaded before it (SP-API's fees read the day's offers).
    wanted = [t for t in definition.tables if t in asked]
    if urlsplit(base_url).scheme not in {"http", "https"}:
        raise ValueError(f"the base URL of {source} must be http(s)://…, got {base_url!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if window is not None:
        check_window(window)
    run_id = run_id or uuid.uuid4().hex
    store = connector_state(settings)
    client, credential = open_client(
        definition, tenant_id=tenant_id, secret=secret, base_url=base_url, policy=policy
    )
    if options:
        credential = replace(credential, options={**credential.options, **options})
    results: list[LoadResult] = []
    with client:
        for table in wanted:
            results.append(
                load_table(
                    settings,
                    definition,
                    table,
                    tenant_id=tenant_id,
                    client=client,
                    credential=credential,
                    store=store,
                    run_id=run_id,
                    batch_size=batch_size,
                    page_size=page_size,
                    full_refresh=full_refresh,
                    progress=progress,
                    window=window,
                )
            )
    return results
