"""The quarantine table: rows that could not be loaded, with where and why.

One schema for every source (CRM exports, API connectors), so the ops dashboard
reads all quarantines as one table. Kept free of heavy imports: connectors and
the export parser both use it.
"""

from __future__ import annotations

import pyarrow as pa

QUARANTINE_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("reason", pa.string()),
        ("raw_record", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)
