"""A marketplace catalog per tenant, as Amazon's Selling Partner API describes it.

Three tables under ``<tenant>/sp_api/``, one row per ASIN, each payload in the
documented shape the sandbox serves (``sandbox/server/sp_api.py``):

- ``catalog_items``: a Catalog Items 2022-04-01 ``Item`` with every data set the
  connector asks for (summaries, salesRanks, identifiers, attributes with
  ``list_price``, dimensions in inches and pounds, as the US marketplace gives them);
- ``item_offers``: a Product Pricing v0 ``getItemOffers`` payload (New condition):
  offer counts by fulfilment channel, lowest and buy-box landed prices, the offers;
- ``fee_schedules``: what Product Fees v0 charges the item (referral rate and
  minimum, FBA fulfilment fee by size tier), from which the sandbox computes an
  estimate at whatever price it is asked about.

Items fall into six categories (``CATEGORIES``), each title carrying its
category's word (``home``, ``kitchen``, ``office``, ``fitness``, ``pet``, ``toy``)
so a keyword search finds them; the products include the phrases of
``config/sourcing/default.yaml`` (garden planter, kitchen storage, desk organizer).
Sales ranks are log-uniform within a category's range, offer counts grow with
popularity, a few items have no rank or no offers.
Identifiers are valid: UPC-A with its check digit and the EAN-13 it implies, or
(for some European-sourced items) an EAN only.

``write_price_lists`` turns a generated catalog into the tenant's supplier price
lists (``<inbox>/<tenant>/price_lists/``), with the supplier ids of the tenant's
supplier records (``sandbox/supplier_inbox.py``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import string
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sandbox.generator.core import Writers, stream
from sandbox.generator.world import World

MARKETPLACE_ID = "ATVPDKIKX0DER"
CURRENCY = "USD"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Category:
    group: str
    """``websiteDisplayGroup`` of the item's display-group sales rank."""
    title: str
    word: str
    """In every title of the category: what a keyword search for it matches."""
    products: tuple[str, ...]
    price: tuple[float, float]
    weight_lb: tuple[float, float]
    rank: tuple[int, int]
    referral_rate: Decimal
    brands: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "home_garden_display_on_website", "Home & Kitchen", "home",
        ("Garden Planter", "Self-Watering Garden Planter", "Kitchen Storage Canister Set",
         "Herb Keeper", "Spice Rack Organizer", "Bamboo Cutting Board", "Garlic Press",
         "Stainless Steel Colander"),
        (8.0, 45.0), (0.3, 3.5), (40, 600_000), Decimal("0.15"),
        ("Kestrel Home", "Copperline", "Nordhaus", "Olivewood & Co"),
    ),
    Category(
        "kitchen_display_on_website", "Kitchen & Dining", "kitchen",
        ("Silicone Spatula Set", "Measuring Cup Set", "Salad Spinner", "Kitchen Storage Bins",
         "Oil Sprayer Bottle", "Knife Sharpener"),
        (7.0, 40.0), (0.2, 2.5), (50, 700_000), Decimal("0.15"),
        ("Copperline", "Saltbox", "Olivewood & Co"),
    ),
    Category(
        "office_product_display_on_website", "Office Products", "office",
        ("Desk Organizer", "Mesh Desk Organizer", "Monitor Stand", "Cable Management Box",
         "Drawer Organizer", "Letter Tray"),
        (9.0, 55.0), (0.4, 5.0), (70, 800_000), Decimal("0.15"),
        ("Deskwise", "Paperlane", "Ironbark"),
    ),
    Category(
        "sporting_goods_display_on_website", "Sports & Outdoors", "fitness",
        ("Resistance Band Set", "Yoga Mat", "Jump Rope", "Foam Roller", "Ab Roller Wheel",
         "Grip Strengthener", "Insulated Water Bottle"),
        (10.0, 60.0), (0.2, 6.0), (60, 900_000), Decimal("0.15"),
        ("FitPeak", "Summit Motion", "Ironbark"),
    ),
    Category(
        "pet_products_display_on_website", "Pet Supplies", "pet",
        ("Dog Chew Toy", "Cat Scratching Pad", "Grooming Brush", "Collapsible Dog Bowl",
         "Hair Remover Roller", "Cat Feather Wand"),
        (6.0, 35.0), (0.1, 2.5), (30, 500_000), Decimal("0.15"),
        ("Pawsome", "Tailwise", "Barkley Goods"),
    ),
    Category(
        "toy_display_on_website", "Toys & Games", "toy",
        ("Building Blocks Set", "Magnetic Tiles", "Bubble Machine", "Stacking Rings",
         "Wooden Puzzle", "Marble Run"),
        (9.0, 50.0), (0.3, 4.0), (80, 1_200_000), Decimal("0.15"),
        ("Brightbox", "Little Lantern", "Kite & Kin"),
    ),
)  # fmt: skip
STYLES = ("Premium", "Compact", "Heavy-Duty", "Eco-Friendly", "Deluxe", "Everyday", "Pro")
FBA_SIZE_TIERS = (
    # (max shipping weight in pounds, fee in USD): small and large standard size.
    (0.5, Decimal("3.22")),
    (1.0, Decimal("3.86")),
    (2.0, Decimal("5.13")),
    (3.0, Decimal("5.86")),
)
FBA_PER_POUND_ABOVE = Decimal("0.32")
REFERRAL_MINIMUM = Decimal("0.30")


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def check_digit(body: str) -> str:
    """The GS1 check digit of a UPC-A or EAN-13 body (all digits but the last)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))


def fba_fee(weight_lb: float) -> Decimal:
    """The FBA fulfilment fee of a standard-size item of this shipping weight."""
    for limit, fee in FBA_SIZE_TIERS:
        if weight_lb <= limit:
            return fee
    extra = Decimal(str(math.ceil(weight_lb - 3.0)))
    return FBA_SIZE_TIERS[-1][1] + extra * FBA_PER_POUND_ABOVE


def _money_json(amount: Decimal) -> dict[str, Any]:
    return {"CurrencyCode": CURRENCY, "Amount": float(amount)}


def _offers(rng: random.Random, asin: str, price: Decimal, rank: int | None) -> dict[str, Any]:
    """A getItemOffers payload (New): popular items draw more sellers."""
    popularity = 1.0 if rank is None else max(0.0, 1.0 - math.log10(rank) / 6.5)
    count = 0 if rng.random() < 0.05 else max(1, int(rng.triangular(1, 40, 2 + 30 * popularity)))
    offers: list[dict[str, Any]] = []
    for n in range(count):
        fba = rng.random() < 0.55
        listing = _money(float(price) * rng.uniform(0.82, 1.08))
        shipping = Decimal("0.00") if fba or rng.random() < 0.6 else _money(rng.uniform(2, 7))
        offers.append(
            {
                "SellerId": "A"
                + "".join(rng.choices(string.ascii_uppercase + string.digits, k=13)),
                "SubCondition": "new",
                "IsFulfilledByAmazon": fba,
                "IsFeaturedMerchant": rng.random() < 0.7,
                "IsBuyBoxWinner": False,
                "ListingPrice": _money_json(listing),
                "Shipping": _money_json(shipping),
                "ShippingTime": {"minimumHours": 24, "maximumHours": 48, "availabilityType": "NOW"},
                "SellerFeedbackRating": {
                    "SellerPositiveFeedbackRating": float(rng.randint(80, 100)),
                    "FeedbackCount": rng.randint(5, 40_000),
                },
                "ShipsFrom": {"Country": "US"},
                "_order": n,
            }
        )
    offers.sort(key=lambda o: (o["ListingPrice"]["Amount"] + o["Shipping"]["Amount"], o["_order"]))
    for offer in offers:
        del offer["_order"]
    summary: dict[str, Any] = {"TotalOfferCount": count, "NumberOfOffers": [], "LowestPrices": []}
    for channel, is_fba in (("Amazon", True), ("Merchant", False)):
        mine = [o for o in offers if o["IsFulfilledByAmazon"] is is_fba]
        if not mine:
            continue
        summary["NumberOfOffers"].append(
            {"condition": "new", "fulfillmentChannel": channel, "OfferCount": len(mine)}
        )
        cheapest = mine[0]
        landed = _money(
            Decimal(str(cheapest["ListingPrice"]["Amount"]))
            + Decimal(str(cheapest["Shipping"]["Amount"]))
        )
        summary["LowestPrices"].append(
            {
                "condition": "new",
                "fulfillmentChannel": channel,
                "LandedPrice": _money_json(landed),
                "ListingPrice": cheapest["ListingPrice"],
                "Shipping": cheapest["Shipping"],
            }
        )
    if offers and rng.random() < 0.93:
        # The buy box goes to a competitive offer, most often a fulfilled-by-Amazon one.
        contenders = offers[: max(1, min(4, len(offers)))]
        winner = next((o for o in contenders if o["IsFulfilledByAmazon"]), contenders[0])
        winner["IsBuyBoxWinner"] = True
        landed = _money(
            Decimal(str(winner["ListingPrice"]["Amount"]))
            + Decimal(str(winner["Shipping"]["Amount"]))
        )
        summary["BuyBoxPrices"] = [
            {
                "condition": "New",
                "LandedPrice": _money_json(landed),
                "ListingPrice": winner["ListingPrice"],
                "Shipping": winner["Shipping"],
            }
        ]
        summary["BuyBoxEligibleOffers"] = summary["NumberOfOffers"]
    summary["ListPrice"] = _money_json(price)
    return {
        "ASIN": asin,
        "status": "Success",
        "ItemCondition": "New",
        "marketplaceId": MARKETPLACE_ID,
        "Identifier": {"MarketplaceId": MARKETPLACE_ID, "ItemCondition": "New", "ASIN": asin},
        "Summary": summary,
        "Offers": offers[:20],  # the API returns at most the 20 lowest-priced offers
    }


def catalog(seed: int, tenant_id: str, count: int) -> list[dict[str, Any]]:
    """``count`` items: ``{"item", "offers", "fees", "category"}`` each, by ASIN."""
    rng = stream(seed, tenant_id, "sp_api.catalog")
    out: dict[str, dict[str, Any]] = {}
    upc_prefix = rng.randrange(10_000, 99_999)
    n = 0
    while len(out) < count:
        n += 1
        category = CATEGORIES[n % len(CATEGORIES)]
        asin = _asin(rng)
        if asin in out:
            continue
        product = rng.choice(category.products)
        brand = rng.choice(category.brands)
        style = rng.choice(STYLES)
        title = f"{brand} {style} {product}, {category.word.title()} {rng.choice(_NOUNS)}"
        price = _money(rng.uniform(*category.price))
        weight = round(rng.uniform(*category.weight_lb), 2)
        lo, hi = category.rank
        rank = (
            None if rng.random() < 0.04 else int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        )
        upc_body = f"{upc_prefix:05d}{n:06d}"
        identifiers: list[dict[str, str]] = []
        if rng.random() < 0.85:
            upc = upc_body + check_digit(upc_body)
            identifiers.append({"identifierType": "UPC", "identifier": upc})
            identifiers.append({"identifierType": "EAN", "identifier": "0" + upc})
        else:
            ean_body = "40" + f"{rng.randrange(10**10):010d}"
            identifiers.append(
                {"identifierType": "EAN", "identifier": ean_body + check_digit(ean_body)}
            )
        length, width = round(rng.uniform(3, 18), 1), round(rng.uniform(2, 12), 1)
        height = round(rng.uniform(0.5, 8), 1)
        item = {
            "asin": asin,
            "attributes": {
                "item_name": [
                    {"value": title, "language_tag": "en_US", "marketplace_id": MARKETPLACE_ID}
                ],
                "brand": [
                    {"value": brand, "language_tag": "en_US", "marketplace_id": MARKETPLACE_ID}
                ],
                "list_price": [
                    {"value": float(price), "currency": CURRENCY, "marketplace_id": MARKETPLACE_ID}
                ],
            },
            "dimensions": [
                {
                    "marketplaceId": MARKETPLACE_ID,
                    "item": {
                        "height": {"unit": "inches", "value": height},
                        "length": {"unit": "inches", "value": length},
                        "width": {"unit": "inches", "value": width},
                        "weight": {"unit": "pounds", "value": weight},
                    },
                    "package": {
                        "height": {"unit": "inches", "value": round(height + 0.5, 1)},
                        "length": {"unit": "inches", "value": round(length + 0.5, 1)},
                        "width": {"unit": "inches", "value": round(width + 0.5, 1)},
                        "weight": {"unit": "pounds", "value": round(weight * 1.1 + 0.05, 2)},
                    },
                }
            ],
            "identifiers": [{"marketplaceId": MARKETPLACE_ID, "identifiers": identifiers}],
            "salesRanks": [
                {
                    "marketplaceId": MARKETPLACE_ID,
                    "classificationRanks": [],
                    "displayGroupRanks": []
                    if rank is None
                    else [
                        {
                            "websiteDisplayGroup": category.group,
                            "title": category.title,
                            "link": f"http://www.amazon.com/gp/bestsellers/{category.word}",
                            "rank": rank,
                        }
                    ],
                }
            ],
            "summaries": [
                {
                    "marketplaceId": MARKETPLACE_ID,
                    "brand": brand,
                    "itemClassification": "BASE_PRODUCT",
                    "itemName": title,
                    "manufacturer": brand,
                    "websiteDisplayGroup": category.group,
                    "websiteDisplayGroupName": category.title,
                    "browseClassification": {
                        "displayName": product,
                        "classificationId": str(1_000_000 + CATEGORIES.index(category) * 1000),
                    },
                }
            ],
        }
        fees = {
            "asin": asin,
            "referral_rate": str(category.referral_rate),
            "referral_minimum": str(REFERRAL_MINIMUM),
            "fba_fee": str(fba_fee(weight * 1.1 + 0.05)),
            "variable_closing_fee": "0.00",
            "per_item_fee": "0.00",
        }
        out[asin] = {
            "item": item,
            "offers": _offers(rng, asin, price, rank),
            "fees": fees,
            "category": category.word,
        }
    return [out[asin] for asin in sorted(out)]


_NOUNS = ("Essentials", "Gear", "Accessory", "Tool", "Set", "Gift")


def generate(world: World, writers: Writers) -> None:
    items = catalog(world.seed, world.tenant_id, world.counts["sp_api.catalog_items"])
    ts = world.as_of_ts
    for table, key in (
        ("catalog_items", "item"),
        ("item_offers", "offers"),
        ("fee_schedules", "fees"),
    ):
        out = writers.open(table, time_column="updated")
        for entry in items:
            out.add(entry["item"]["asin"], ts, entry[key])
        writers.done(table, out)
    writers.output.facts["sp_api.keywords"] = sorted({c.word for c in CATEGORIES})


# -- supplier price lists ------------------------------------------------------------

PRICE_LIST_COLUMNS = (
    "supplier_id", "supplier_sku", "upc", "ean", "asin", "unit_cost", "currency", "moq",
    "lead_time_days",
)  # fmt: skip
# (supplier id, share of the catalog it quotes): ids of sandbox/supplier_inbox.py's
# records. SUP-010 is the supplier the demo's screening list names (a sanctions
# match, so high risk and blocked until reviewed).
PRICE_LIST_SUPPLIERS = (("SUP-001", 0.35), ("SUP-002", 0.25), ("SUP-004", 0.3), ("SUP-009", 0.3))
HIGH_RISK_SUPPLIER = "SUP-010"
HIGH_RISK_ONLY = 3
"""Items only the high-risk supplier quotes: the demo's "review before buying" cases."""
UNMATCHED_ROWS = 4
"""Rows per supplier whose identifiers match no catalog item."""


@dataclass
class PriceLists:
    tenant_id: str
    files: list[Path]
    rows: int
    high_risk_only: list[str]
    """ASINs whose only supplier is ``HIGH_RISK_SUPPLIER``."""
    quoted: list[dict[str, str]] = field(default_factory=list)
    """Every row written, whatever the file's format."""


def _settled(path: Path) -> None:
    settled = time.time() - 60  # older than the inbox's settle window: complete
    os.utime(path, (settled, settled))


def _rows_for(
    rng: random.Random, supplier: str, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for n, entry in enumerate(entries, start=1):
        item = entry["item"]
        ids = {i["identifierType"]: i["identifier"] for i in item["identifiers"][0]["identifiers"]}
        price = Decimal(str(item["attributes"]["list_price"][0]["value"]))
        # Suppliers quote what they know: some by ASIN, most by UPC, some by EAN.
        roll = rng.random()
        asin = upc = ean = ""
        if roll < 0.3:
            asin = item["asin"]
        elif roll < 0.8 and "UPC" in ids:
            upc = ids["UPC"]
        else:
            ean = ids["EAN"]
        rows.append(
            {
                "supplier_id": supplier,
                "supplier_sku": f"{supplier[-3:]}-{n:04d}",
                "upc": upc,
                "ean": ean,
                "asin": asin,
                "unit_cost": str(_money(float(price) * rng.uniform(0.18, 0.45))),
                "currency": CURRENCY,
                "moq": str(rng.choice((24, 50, 100, 200, 500))),
                "lead_time_days": str(rng.choice((10, 14, 21, 30, 45, 60))),
            }
        )
    for m in range(UNMATCHED_ROWS):
        body = f"{rng.randrange(10**11):011d}"
        rows.append(
            {
                "supplier_id": supplier,
                "supplier_sku": f"{supplier[-3:]}-X{m:03d}",
                "upc": body + check_digit(body),
                "ean": "",
                "asin": "",
                "unit_cost": str(_money(rng.uniform(1, 12))),
                "currency": CURRENCY,
                "moq": "100",
                "lead_time_days": "30",
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PRICE_LIST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    _settled(path)


def _write_xlsx(path: Path, rows: list[dict[str, Any]]) -> bool:
    try:
        from openpyxl import Workbook
    except ImportError:
        return False
    book = Workbook()
    sheet = book.active
    # Header names as a person types them: the reader is tolerant of case and spaces.
    sheet.append([c.replace("_", " ").title() for c in PRICE_LIST_COLUMNS])
    for row in rows:
        sheet.append(
            [
                float(row[c]) if c == "unit_cost" else int(row[c]) if c in {"moq", "lead_time_days"}
                else row[c]
                for c in PRICE_LIST_COLUMNS
            ]
        )  # fmt: skip
    tmp = path.with_name("." + path.name + ".tmp")
    book.save(tmp)
    tmp.replace(path)
    _settled(path)
    return True


def write_price_lists(
    inbox_dir: Path, data_dir: Path, tenant_id: str, *, seed: int = 7
) -> PriceLists:
    """The tenant's supplier price lists, quoting items of its generated catalog
    (``data_dir``, as ``generate_sources`` wrote it): one CSV per supplier, the last
    one as XLSX when openpyxl is installed. Most rows match a catalog item by UPC,
    EAN or ASIN, some match nothing, and ``HIGH_RISK_ONLY`` items are quoted by
    the high-risk supplier alone. Same arguments, same bytes (CSV)."""
    path = data_dir / tenant_id / "sp_api" / "catalog_items.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: generate the sandbox data first")
    payloads = pq.read_table(path, columns=["payload"]).column("payload").to_pylist()
    items = [{"item": json.loads(p)} for p in payloads]
    rng = random.Random(f"{seed}:{tenant_id}:price_lists")
    folder = inbox_dir / tenant_id / "price_lists"
    folder.mkdir(parents=True, exist_ok=True)
    order = list(range(len(items)))
    rng.shuffle(order)
    risky_only = [items[i] for i in order[:HIGH_RISK_ONLY]]
    rest = [items[i] for i in order[HIGH_RISK_ONLY:]]
    files: list[Path] = []
    quoted: list[dict[str, str]] = []
    for position, (supplier, share) in enumerate(PRICE_LIST_SUPPLIERS):
        rows = _rows_for(rng, supplier, [e for e in rest if rng.random() < share])
        quoted += rows
        last = position == len(PRICE_LIST_SUPPLIERS) - 1
        xlsx = folder / f"{supplier.lower()}_price_list.xlsx"
        if last and _write_xlsx(xlsx, rows):
            files.append(xlsx)
        else:
            target = folder / f"{supplier.lower()}_price_list.csv"
            _write_csv(target, rows)
            files.append(target)
    risky_rows = _rows_for(rng, HIGH_RISK_SUPPLIER, risky_only + rest[:5])
    target = folder / f"{HIGH_RISK_SUPPLIER.lower()}_price_list.csv"
    _write_csv(target, risky_rows)
    files.append(target)
    quoted += risky_rows
    risky = sorted(e["item"]["asin"] for e in risky_only)
    return PriceLists(tenant_id, files, len(quoted), risky, quoted)
