"""The lake tables that reach dbt: every table of the six API sources, the CRM
export, the supplier documents, the supplier inputs, the SP-API tables and the price
lists, each with the columns every one of its lake files has.

dbt has one source per entry (``dbt/models/staging/<source>/_<source>__sources.yml``,
tests/test_dbt_project.py checks they agree) and, on Postgres, one raw table
loaded by ``warehouse.raw_tables``.
"""

from __future__ import annotations

import pyarrow as pa

from connectors.landing import INGESTED_AT_TYPE, VERSION_COLUMN, TableSpec
from connectors.sources import SOURCES
from core.contracts import price_lists, supplier_docs, suppliers
from exports.crm_leads import LEADS_SCHEMA
from warehouse.raw_tables import RawTable


def landed_schema(spec: TableSpec) -> pa.Schema:
    """The columns landing writes into every file of a connector table: the tenant,
    the declared provider fields, and its own (connectors/landing.py)."""
    return pa.schema(
        [
            ("tenant_id", pa.string()),
            *spec.columns.items(),
            ("_raw", pa.string()),
            ("_run_id", pa.string()),
            ("_ingested_at", INGESTED_AT_TYPE),
            (VERSION_COLUMN, pa.int64()),
        ]
    )


def lake_tables() -> list[RawTable]:
    """Every lake table dbt reads: CRM export first, then the sources in load order,
    then the supplier documents."""
    tables = [RawTable("crm_export", "leads", LEADS_SCHEMA)]
    for source in SOURCES.values():
        for spec in source.tables.values():
            tables.append(RawTable(spec.source, spec.name, landed_schema(spec)))
    tables += [
        RawTable(
            supplier_docs.SOURCE, supplier_docs.DOCUMENTS_TABLE, supplier_docs.DOCUMENTS_SCHEMA
        ),
        RawTable(
            supplier_docs.SOURCE, supplier_docs.FIELDS_TABLE, supplier_docs.DOCUMENT_FIELDS_SCHEMA
        ),
    ]
    for name, schema in suppliers.LAKE_TABLES.items():
        tables.append(RawTable(suppliers.SOURCE, name, schema))
    for name, schema in price_lists.LAKE_TABLES.items():
        tables.append(RawTable(price_lists.SOURCE, name, schema))
    return tables
