"""The sourcing fixture both sourcing test modules land: SP-API lake tables (written
through connectors/landing.py, as the connector lands them), supplier records and a
policy (so mart_supplier_risk has a low-, a high-risk and a rejected supplier), and
price lists in the inbox, one CSV and one XLSX, with bad rows among the good."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from openpyxl import Workbook

from connectors.landing import Fetched, land_batch
from connectors.sources.sp_api import TABLES as SP_API_TABLES
from core.settings import Settings
from sourcing.assumptions import SourcingAssumptions, parse_assumptions
from sourcing.price_list_landing import PriceListLoad, land_assumptions, land_price_lists
from suppliers.landing import (
    land_policy,
    land_purchase_orders,
    land_review_decisions,
    land_screening_entries,
    land_suppliers,
)
from suppliers.matches import screen_tenant
from suppliers.policy import parse_policy

MARKETPLACE = "ATVPDKIKX0DER"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LAST_DAY = date(2026, 6, 1)

ASSUMPTIONS = f"""
version: 1
marketplace_id: {MARKETPLACE}
keywords: [planter]
currency: USD
fx_rates: {{USD: 1.0, EUR: 1.08}}
freight_per_kg: 1.80
duty_rate: 0.05
min_offer_days: 7
"""

# Country risk decides the tiers: KP adds 40 points, high from 35 here.
POLICY = """
version: 1
required_documents: []
min_orders: 1
tiers: {medium: 20, high: 35, critical: 90}
as_of: 2026-06-01
"""

SUPPLIERS_CSV = """supplier_id,legal_name,aliases,country
S-SAFE,Harbour Components Ltd,,GB
S-RISK,Pyongyang Trading Co,,KP
S-REJ,Cheap Goods Ltd,,GB
"""

ORDERS_CSV = """po_id,supplier_id,ordered_at,promised_at,received_at,amount,currency,quantity,\
rejected_quantity
PO-1,S-SAFE,2026-01-01,2026-01-10,2026-01-09,100,USD,10,0
PO-2,S-RISK,2026-01-01,2026-01-10,2026-01-09,100,USD,10,0
"""

# (asin, category, rank, weight, upc, ean, buy-box prices by day (oldest first), offers)
ITEMS: list[tuple[str, str, int | None, float | None, str | None, str | None, list[str], int]] = [
    ("B0SAFE0001", "home_garden_display_on_website", 1000, 0.5, None, None, ["20.00"] * 10, 2),
    ("B0RISK0001", "home_garden_display_on_website", 1000, 0.5, None, None, ["20.00"] * 10, 2),
    ("B0UPC00001", "kitchen_display_on_website", 5000, 1.0, "036000291452", None,
     ["30.00", "33.00", "27.00", "30.00", "36.00", "24.00", "30.00", "30.00"], 12),
    ("B0EAN00001", "unheard_of_category", 20000, 0.2, None, "4006381333931", ["15.00"] * 8, 5),
    ("B0NORANK01", "toy_display_on_website", None, 0.3, "012345678905", None, ["12.00"] * 3, 1),
    ("B0BLOCKED1", "home_garden_display_on_website", 800, 0.5, None, None, ["25.00"] * 10, 3),
]  # fmt: skip

PRICE_LIST_CSV = """Supplier ID, Supplier SKU ,UPC,EAN,ASIN,Unit Cost,Currency,MOQ,Lead-Time Days
S-SAFE,SK-1,,,B0SAFE0001,5.00,USD,100,14
S-RISK,RK-1,,,B0RISK0001,5.00,USD,100,14
S-SAFE,SK-2,036000291452,,,4.00,EUR,50,20
S-SAFE,SK-3,,4006381333931,,3.00,USD,,
S-REJ,RJ-1,,,B0BLOCKED1,2.00,USD,1,1
S-REJ,RJ-2,,,B0SAFE0001,1.00,USD,1,1
S-SAFE,BAD-1,036000291453,,,5.00,USD,1,1
S-SAFE,BAD-2,,4006381333932,,5.00,USD,1,1
S-SAFE,BAD-3,,,XYZ,5.00,USD,1,1
S-SAFE,BAD-4,,,B0SAFE0001,0,USD,1,1
S-SAFE,BAD-5,,,B0SAFE0001,5.00,JPY,1,1
S-SAFE,SK-1,,,B0SAFE0001,5.00,USD,100,14
S-SAFE,BAD-6,,,,5.00,USD,1,1
"""

# The workbook: a UPC typed as a number (leading zero lost), then a negative cost.
XLSX_ROWS: list[list[Any]] = [
    ["supplier_id", "supplier_sku", "upc", "unit_cost", "currency", "moq"],
    ["S-SAFE", "X-1", 12345678905, 2.5, "USD", 24],
    ["S-SAFE", "X-2", "012345678905", -1, "USD", 24],
]

EXPECTED_QUARANTINE = {
    ("price_lists/alpha.csv", 8): "upc 036000291453 fails its check digit (expected 2)",
    ("price_lists/alpha.csv", 9): "ean 4006381333932 fails its check digit (expected 1)",
    ("price_lists/alpha.csv", 10): "asin 'XYZ' is not an ASIN (B and 9 letters or digits, "
    "or an ISBN-10)",
    ("price_lists/alpha.csv", 11): "unit_cost '0' must be a positive amount",
    ("price_lists/alpha.csv", 12): "currency 'JPY' has no exchange rate in the tenant's "
    "sourcing configuration (has EUR, USD)",
    ("price_lists/alpha.csv", 13): "supplier_sku 'SK-1' of 'S-SAFE' repeats line 2",
    ("price_lists/alpha.csv", 14): "no identifier: one of upc, ean or asin is needed to "
    "match a product",
    ("price_lists/beta.xlsx", 3): "unit_cost '-1' must be a positive amount",
}  # fmt: skip


@dataclass
class Landed:
    assumptions: SourcingAssumptions
    price_lists: PriceListLoad


def write_sp_api(settings: Settings, tenant_id: str) -> None:
    """The connector's three tables for ``ITEMS``, landed the way it lands them."""
    catalog, offers, fees = [], [], []
    for asin, category, rank, weight, upc, ean, prices, count in ITEMS:
        catalog.append(
            {
                "asin": asin, "marketplace_id": MARKETPLACE, "title": f"Item {asin}",
                "brand": "Acme", "category": category, "category_title": category,
                "sales_rank": rank, "upc": upc, "ean": ean, "item_weight_kg": weight,
                "length_cm": 10.0, "width_cm": 10.0, "height_cm": 10.0,
                "list_price": "29.99", "currency": "USD", "updated_at": NOW.isoformat(),
                "first_seen_at": NOW.isoformat(), "found_by": "keyword:planter",
            }
        )  # fmt: skip
        for back, price in enumerate(reversed(prices)):
            day = (LAST_DAY - timedelta(days=back)).isoformat()
            offers.append(
                {
                    "asin": asin, "marketplace_id": MARKETPLACE, "day": day,
                    "item_condition": "New", "offer_count": count,
                    "fba_offer_count": count // 2, "lowest_price": price,
                    "buy_box_price": price, "currency": "USD", "buy_box_is_fba": True,
                    "fetched_at": f"{day}T06:00:00Z",
                }
            )  # fmt: skip
        fees.append(
            {
                "asin": asin, "marketplace_id": MARKETPLACE, "day": LAST_DAY.isoformat(),
                "price": prices[-1], "currency": "USD", "referral_fee": "3.00",
                "referral_rate": "0.15", "fba_fee": "4.50", "variable_closing_fee": "0.00",
                "per_item_fee": "0.50", "fixed_fees": "5.00", "total_fees": "8.00",
                "fetched_at": NOW.isoformat(),
            }
        )  # fmt: skip
    tables = {"catalog_items": catalog, "item_offers": offers, "fee_estimates": fees}
    for name, records in tables.items():
        spec = SP_API_TABLES[name]
        batch = [Fetched(r, origin="fixture", position=i) for i, r in enumerate(records)]
        land_batch(settings, spec, tenant_id=tenant_id, batch=batch, run_id="fixture", now=NOW)


def write_inbox(settings: Settings, tenant_id: str) -> None:
    inbox = settings.tenant_inbox(tenant_id)
    folder = inbox / "price_lists"
    folder.mkdir(parents=True, exist_ok=True)
    (inbox / "suppliers.csv").write_text(SUPPLIERS_CSV, encoding="utf-8")
    (inbox / "purchase_orders.csv").write_text(ORDERS_CSV, encoding="utf-8")
    (inbox / "screening").mkdir(exist_ok=True)
    (inbox / "screening" / "watchlist.csv").write_text("id,name\nw1,Nobody We Know Ltd\n")
    (folder / "alpha.csv").write_text(PRICE_LIST_CSV, encoding="utf-8")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in XLSX_ROWS:
        sheet.append(row)
    book.save(folder / "beta.xlsx")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "linked.csv").symlink_to(folder / "alpha.csv")
    old = time.time() - 60  # settled: not "still uploading"
    for path in inbox.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (old, old))


def land_all(settings: Settings, tenant_id: str) -> Landed:
    """Everything the sourcing marts read, for one tenant."""
    write_sp_api(settings, tenant_id)
    write_inbox(settings, tenant_id)
    land_suppliers(settings, tenant_id, now=NOW)
    land_screening_entries(settings, tenant_id, now=NOW)
    land_purchase_orders(settings, tenant_id, now=NOW)
    land_policy(settings, tenant_id, parse_policy(POLICY, where="test policy"), now=NOW)
    rejected = {
        "decision_id": 1, "supplier_id": "S-REJ", "decision": "reject",
        "comment": "counterfeits", "reviewer": "anna", "risk_version": "x",
        "match_verdicts": "[]", "decided_at": NOW - timedelta(days=3),
    }  # fmt: skip
    land_review_decisions(settings, tenant_id, [rejected], now=NOW)
    screen_tenant(settings, tenant_id, run_id="fixture", now=NOW)
    assumptions = parse_assumptions(ASSUMPTIONS, where="test assumptions")
    land_assumptions(settings, tenant_id, assumptions, now=NOW)
    loads = land_price_lists(settings, tenant_id, assumptions, now=NOW)
    return Landed(assumptions, loads)
