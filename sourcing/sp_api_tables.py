"""The SP-API lake tables as the sourcing models read them (the lake contract of
issue 10): ``lake/sp_api/<table>/tenant=<id>/month=<YYYY-MM>/part.parquet``, landed
by connectors/landing.py.

The SP-API connector (connectors/sources/sp_api.py) owns these tables once it is
in ``connectors.sources.SOURCES``; until then these specs stand in for it, so the
raw loader, the dbt sources and the tests have the real layout. warehouse/lake_tables.py
uses them only when no connector declares the ``sp_api`` source.
"""

from __future__ import annotations

import pyarrow as pa

from connectors.landing import TableSpec

SOURCE = "sp_api"

CATALOG_ITEMS = TableSpec(
    source=SOURCE,
    name="catalog_items",
    date_field="updated_at",
    date_format="iso",
    primary_key=("asin", "marketplace_id"),
    columns={
        "asin": pa.string(),
        "marketplace_id": pa.string(),
        "title": pa.string(),
        "brand": pa.string(),
        "category": pa.string(),
        "category_title": pa.string(),
        "sales_rank": pa.int64(),
        "upc": pa.string(),
        "ean": pa.string(),
        "item_weight_kg": pa.float64(),
        "length_cm": pa.float64(),
        "width_cm": pa.float64(),
        "height_cm": pa.float64(),
        "list_price": pa.string(),
        "currency": pa.string(),
        "updated_at": pa.string(),
    },
)

ITEM_OFFERS = TableSpec(
    source=SOURCE,
    name="item_offers",
    date_field="day",
    date_format="iso",
    primary_key=("asin", "marketplace_id", "day"),
    columns={
        "asin": pa.string(),
        "marketplace_id": pa.string(),
        "day": pa.string(),
        "item_condition": pa.string(),
        "offer_count": pa.int64(),
        "fba_offer_count": pa.int64(),
        "lowest_price": pa.string(),
        "buy_box_price": pa.string(),
        "currency": pa.string(),
        "buy_box_is_fba": pa.bool_(),
        "fetched_at": pa.string(),
    },
)

FEE_ESTIMATES = TableSpec(
    source=SOURCE,
    name="fee_estimates",
    date_field="day",
    date_format="iso",
    primary_key=("asin", "marketplace_id", "day"),
    columns={
        "asin": pa.string(),
        "marketplace_id": pa.string(),
        "day": pa.string(),
        "price": pa.string(),
        "currency": pa.string(),
        "referral_fee": pa.string(),
        "referral_rate": pa.string(),
        "fba_fee": pa.string(),
        "variable_closing_fee": pa.string(),
        "per_item_fee": pa.string(),
        "fixed_fees": pa.string(),
        "total_fees": pa.string(),
        "fetched_at": pa.string(),
    },
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (CATALOG_ITEMS, ITEM_OFFERS, FEE_ESTIMATES)}
