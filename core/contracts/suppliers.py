"""The supplier lake tables: what the supplier assets land and dbt reads.

All live under ``lake/suppliers/<table>/tenant=<id>/<table>.parquet``, one file per
tenant replaced atomically on each run (lake/files.py):

- ``suppliers``: the tenant's supplier records (``inbox/<tenant>/suppliers.csv``);
- ``screening_entries``: the screening lists it loaded (``inbox/<tenant>/screening/``);
- ``purchase_orders``: its ERP export of orders and receipts;
- ``policy`` and ``required_documents``: its validated supplier policy
  (``config/suppliers/<tenant>.yaml``), as rows dbt joins;
- ``review_decisions``: the reviewers' decisions, copied from the ops database;
- ``screening_matches``: what the screening matcher found.

Declared here, in the leaf, because the landing code, the raw loader
(warehouse/lake_tables.py) and the tests all name them.
"""

from __future__ import annotations

import pyarrow as pa

from core.contracts import supplier_docs

SOURCE = "suppliers"
"""The lake source (folder), dbt source and asset-key prefix of these tables."""

UTC_TS = pa.timestamp("us", tz="UTC")

_LINEAGE = [("_source_file", pa.string()), ("_source_line", pa.int64()), ("_ingested_at", UTC_TS)]

SUPPLIERS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("supplier_id", pa.string()),
        ("legal_name", pa.string()),
        # `;`-separated, each trimmed; empty when none
        ("aliases", pa.string()),
        # ISO 3166 alpha-2, upper case; null when the file left it blank
        ("country", pa.string()),
        # the file's other columns, as a JSON object (keys sorted; blanks left out)
        ("attributes", pa.string()),
        *_LINEAGE,
    ]
)

SCREENING_ENTRIES_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("list_name", pa.string()),
        ("entry_id", pa.string()),
        ("entry_schema", pa.string()),
        ("name", pa.string()),
        ("aliases", pa.string()),
        ("countries", pa.string()),
        *_LINEAGE,
    ]
)

PURCHASE_ORDERS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("po_id", pa.string()),
        ("supplier_id", pa.string()),
        ("ordered_at", UTC_TS),
        ("promised_at", UTC_TS),
        ("received_at", UTC_TS),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("quantity", pa.int64()),
        ("rejected_quantity", pa.int64()),
        *_LINEAGE,
    ]
)

POLICY_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("config_version", pa.string()),
        ("sanctions_threshold", pa.float64()),
        ("expiry_warning_days", pa.string()),
        ("tier_medium", pa.int64()),
        ("tier_high", pa.int64()),
        ("tier_critical", pa.int64()),
        ("review_days_critical", pa.int64()),
        ("review_days_high", pa.int64()),
        ("review_days_medium", pa.int64()),
        ("rereview_days", pa.int64()),
        ("min_orders", pa.int64()),
        ("concentration_share", pa.float64()),
        ("as_of", pa.date32()),
        ("_ingested_at", UTC_TS),
    ]
)

REQUIRED_DOCUMENTS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("doc_type", pa.string()),
        ("check_name", pa.bool_()),
        ("check_number", pa.bool_()),
        ("_ingested_at", UTC_TS),
    ]
)

REVIEW_DECISIONS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("decision_id", pa.int64()),
        ("supplier_id", pa.string()),
        ("decision", pa.string()),
        ("comment", pa.string()),
        ("reviewer", pa.string()),
        ("risk_version", pa.string()),
        ("match_verdicts", pa.string()),
        ("decided_at", UTC_TS),
        ("_ingested_at", UTC_TS),
    ]
)

SCREENING_MATCHES_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("supplier_id", pa.string()),
        ("supplier_name", pa.string()),
        ("list_name", pa.string()),
        ("entry_id", pa.string()),
        ("entry_name", pa.string()),
        ("matched_name", pa.string()),
        ("score", pa.float64()),
        ("country_agrees", pa.bool_()),
        ("_run_id", pa.string()),
        ("_ingested_at", UTC_TS),
    ]
)

LAKE_TABLES: dict[str, pa.Schema] = {
    "suppliers": SUPPLIERS_SCHEMA,
    "screening_entries": SCREENING_ENTRIES_SCHEMA,
    "purchase_orders": PURCHASE_ORDERS_SCHEMA,
    "policy": POLICY_SCHEMA,
    "required_documents": REQUIRED_DOCUMENTS_SCHEMA,
    "review_decisions": REVIEW_DECISIONS_SCHEMA,
    "screening_matches": SCREENING_MATCHES_SCHEMA,
}
"""Every supplier lake table, in load order (the matches come from the others)."""

INPUT_TABLES: tuple[str, ...] = tuple(t for t in LAKE_TABLES if t != "screening_matches")

DECISIONS: tuple[str, ...] = ("approve", "reject", "request_info")
"""What a reviewer may decide about a supplier."""

MATCH_VERDICTS: tuple[str, ...] = ("not_same", "confirmed")
"""What a reviewer may say about one screening match: ruled out, or the same party."""

DOC_TYPES = supplier_docs.DOC_TYPES
"""Document kinds a policy may require: the supplier_docs contract's ``doc_type`` values
(dbt's ``supplier_doc_types()`` macro lists the same; a test holds them together)."""
