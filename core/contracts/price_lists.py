"""The price-list lake tables: what the sourcing assets land and dbt reads.

Both live under ``lake/price_lists/<table>/tenant=<id>/<table>.parquet``, one file
per tenant rebuilt from the inbox (or the configuration) on each run and replaced
atomically (lake/files.py), so a re-run never duplicates:

- ``items``: supplier price-list rows from ``inbox/<tenant>/price_lists/*.csv|*.xlsx``,
  one per (file, supplier_id, supplier_sku);
- ``assumptions``: the tenant's sourcing assumptions (``config/sourcing/<tenant>.yaml``):
  marketplace, freight per kg, duty, exchange rates, as rows dbt joins.

Declared here, in the leaf, because the landing code, the raw loader
(warehouse/lake_tables.py) and the tests all name them.
"""

from __future__ import annotations

import pyarrow as pa

SOURCE = "price_lists"
"""The lake source (folder), dbt source and asset-key prefix of these tables."""

UTC_TS = pa.timestamp("us", tz="UTC")

ITEMS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("supplier_id", pa.string()),
        ("supplier_sku", pa.string()),
        # identifiers, normalised: digits only for UPC (12) and EAN (13), upper case ASIN
        ("upc", pa.string()),
        ("ean", pa.string()),
        ("asin", pa.string()),
        # decimal text, as written in the file (no float rounding on the way to dbt)
        ("unit_cost", pa.string()),
        # ISO 4217, upper case, one the tenant's assumptions have a rate for
        ("currency", pa.string()),
        ("moq", pa.int64()),
        ("lead_time_days", pa.int64()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_ingested_at", UTC_TS),
    ]
)

ASSUMPTIONS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("config_version", pa.string()),
        ("marketplace_id", pa.string()),
        # the currency the marketplace sells in; costs are converted to it
        ("currency", pa.string()),
        # one row per currency a price list may use: units of `currency` per unit
        ("cost_currency", pa.string()),
        ("fx_rate", pa.float64()),
        ("freight_per_kg", pa.float64()),
        ("duty_rate", pa.float64()),
        ("min_offer_days", pa.int64()),
        ("_ingested_at", UTC_TS),
    ]
)

LAKE_TABLES: dict[str, pa.Schema] = {"items": ITEMS_SCHEMA, "assumptions": ASSUMPTIONS_SCHEMA}
