"""Publishing mart rows to the serving store: the one path every mart takes.

Called by the Dagster publish assets (``assets/serving_tables.py``), one per contract.
"""

from __future__ import annotations

import pyarrow as pa

from core.contracts.lead_scores import LEAD_SCORES
from core.contracts.table import TableContract
from core.settings import Settings
from serving.store import PublishResult, serving_store


def publish_table(
    settings: Settings,
    contract: TableContract,
    tenant_id: str,
    table: pa.Table | pa.RecordBatchReader,
) -> PublishResult:
    """Atomically replace ``tenant_id``'s rows of ``contract``'s table with ``table``.

    ``table`` holds the tenant's rows of the contract's mart; a RecordBatchReader, as
    DuckDB's ``.arrow()`` returns, is read whole. It is checked first (ContractError
    on a bad table, before anything changes); an empty table removes the tenant's
    rows. Readers see either the previous rows or the new ones, never a mix; other
    tenants and other tables are not touched, and the cost is the tenant's rows.
    """
    return serving_store(settings).publish(contract, tenant_id=tenant_id, table=table)


def publish_lead_scores(
    settings: Settings, tenant_id: str, table: pa.Table | pa.RecordBatchReader
) -> PublishResult:
    """``publish_table`` for the lead-scores contract."""
    return publish_table(settings, LEAD_SCORES, tenant_id, table)
