"""Publishing mart rows to the serving store (called by the Dagster publish asset)."""

from __future__ import annotations

import pyarrow as pa

from core.settings import Settings
from serving.store import PublishResult, serving_store


def publish_lead_scores(
    settings: Settings, tenant_id: str, table: pa.Table | pa.RecordBatchReader
) -> PublishResult:
    """Atomically replace ``tenant_id``'s lead scores with ``table``; other tenants keep theirs.

    ``table`` holds the tenant's rows of ``analytics.mart_lead_scores`` (columns in
    docs/contracts.md); a RecordBatchReader, as DuckDB's ``.arrow()`` returns, is read
    whole. It is checked first (contract.ContractError on a bad table, before
    anything changes); an empty table removes the tenant's rows. API readers see
    either the previous rows or the new ones, never a mix.
    """
    return serving_store(settings).publish_lead_scores(tenant_id=tenant_id, table=table)
