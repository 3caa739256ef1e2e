"""The tenant's Saleor storefront: products with their variants, orders with their lines.

Nodes have Saleor's shapes: global ids (base64 of ``Type:pk``), ``Money`` and
``TaxedMoney`` objects, ``created``/``updatedAt`` DateTimes. An order node
carries its lines and a product node its variants, as the GraphQL API nests
them; ``order_lines`` and ``variants`` are also written as tables of their own
so a loader that flattens them can be checked against the ground truth.
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

import pyarrow as pa

from sandbox.crm_export import FIRST_NAMES, FREE_MAIL, LAST_NAMES
from sandbox.generator.core import (
    DAY,
    Defect,
    Writers,
    daily_counts,
    day_start,
    dumps,
    iso_micro,
    stream,
)
from sandbox.generator.world import World

WINDOW_DAYS = 365
DEFECTS: dict[str, tuple[Defect, ...]] = {
    "orders": (
        Defect("missing_field", "total", 53, 6),
        Defect("unknown_field", "giftCards2", 61, 9),
    ),
    "order_lines": (Defect("missing_field", "quantity", 71, 3),),
    "products": (Defect("missing_field", "name", 11, 2),),
    "variants": (Defect("missing_field", "sku", 29, 4),),
}
CATALOG = (
    ("Apparel", ("T-Shirt", "Hoodie", "Cap", "Jacket", "Socks"), ("S", "M", "L", "XL")),
    ("Accessories", ("Backpack", "Water Bottle", "Notebook", "Mug", "Tote Bag"), ("Black", "Sand")),
    (
        "Electronics",
        ("Wireless Earbuds", "Phone Case", "Charger", "Desk Lamp", "Speaker"),
        ("Black", "White"),
    ),
    ("Home", ("Candle", "Throw Blanket", "Planter", "Cushion", "Coffee Beans"), ("Default",)),
)
ADJECTIVES = (
    "Classic",
    "Premium",
    "Eco",
    "Urban",
    "Vintage",
    "Everyday",
    "Sport",
    "Deluxe",
    "Mini",
)
CITIES = (
    ("US", "Austin", "73301"),
    ("GB", "London", "EC1A 1BB"),
    ("DE", "Berlin", "10115"),
    ("FR", "Paris", "75001"),
    ("US", "Denver", "80202"),
    ("CA", "Toronto", "M5H 2N2"),
)
TAX = 0.2

TIME_COLUMNS = {"pk": pa.int64(), "created": pa.int64()}


def gid(type_name: str, pk: int) -> str:
    """A Saleor global id: ``gid("Order", 1) == "T3JkZXI6MQ=="``."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def money(amount: float, currency: str) -> dict[str, Any]:
    return {"amount": round(amount, 2), "currency": currency}


def taxed(gross: float, currency: str) -> dict[str, Any]:
    net = round(gross / (1 + TAX), 2)
    return {
        "currency": currency,
        "gross": money(gross, currency),
        "net": money(net, currency),
        "tax": money(round(gross - net, 2), currency),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "saleor")
    now = world.as_of_ts
    code = world.profile.code
    first_day = day_start(world.as_of, WINDOW_DAYS)
    channel = {
        "id": gid("Channel", 1),
        "slug": "default-channel",
        "name": "Default channel",
        "currencyCode": code,
    }
    warehouse = {"id": gid("Warehouse", 1), "name": "Main warehouse"}

    # Catalogue: products, each with its variants.
    products: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    for pk in range(1, world.counts["saleor.products"] + 1):
        ci = rng.randrange(len(CATALOG))
        category, nouns, options = CATALOG[ci]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
        created = first_day - rng.randrange(30 * DAY, 200 * DAY)
        base_price = round(rng.uniform(8, 120)) - 0.01
        product_id = gid("Product", pk)
        product_variants = []
        chosen = options if len(options) <= 2 else options[: rng.randint(2, len(options))]
        for option in chosen:
            vpk = len(variants) + 1
            v_created = created + rng.randrange(3600)
            v_updated = min(v_created + rng.randrange(0, 500 * DAY), now - 1)
            price = base_price + (5 if option == "XL" else 0)
            variant = {
                "id": gid("ProductVariant", vpk),
                "name": option,
                "sku": f"{_slug(name)[:12].upper()}-{option[:3].upper()}-{vpk:05d}",
                "created": iso_micro(v_created),
                "updatedAt": iso_micro(v_updated),
                "trackInventory": True,
                "quantityLimitPerCustomer": None,
                "weight": {"unit": "KG", "value": round(rng.uniform(0.1, 2.5), 2)},
                "attributes": [
                    {
                        "attribute": {
                            "id": gid("Attribute", 1 if category == "Apparel" else 2),
                            "name": "Size" if category == "Apparel" else "Colour",
                            "slug": "size" if category == "Apparel" else "colour",
                        },
                        "values": [{"name": option, "slug": _slug(option)}],
                    }
                ],
                "channelListings": [
                    {
                        "channel": channel,
                        "price": money(price, code),
                        "costPrice": money(price * 0.45, code),
                    }
                ],
                "stocks": [
                    {
                        "warehouse": warehouse,
                        "quantity": rng.randrange(0, 400),
                        "quantityAllocated": rng.randrange(0, 10),
                    }
                ],
                "metadata": [],
            }
            variants.append(
                {
                    "pk": vpk,
                    "created": v_created,
                    "updated": v_updated,
                    "product_id": product_id,
                    "price": price,
                    "product_name": name,
                    "node": variant,
                }
            )
            product_variants.append(variant)
        updated = max(
            min(created + rng.randrange(0, 500 * DAY), now - 1),
            *(v["updated"] for v in variants[-len(chosen) :]),
        )
        products.append(
            {
                "pk": pk,
                "created": created,
                "updated": updated,
                "node": {
                    "id": product_id,
                    "name": name,
                    "slug": f"{_slug(name)}-{pk}",
                    "description": (
                        '{"time": 1700000000000, "blocks": [{"id": "b1", "type": "paragraph",'
                        f' "data": {{"text": "The {name.lower()}, made to last."}}}}],'
                        ' "version": "2.24.3"}'
                    ),
                    "seoTitle": name,
                    "seoDescription": None,
                    "productType": {"id": gid("ProductType", ci + 1), "name": category},
                    "category": {
                        "id": gid("Category", ci + 1),
                        "name": category,
                        "slug": _slug(category),
                    },
                    "created": iso_micro(created),
                    "updatedAt": iso_micro(updated),
                    "rating": None,
                    "channelListings": [
                        {
                            "channel": channel,
                            "isPublished": True,
                            "publishedAt": iso_micro(created),
                            "visibleInListings": True,
                            "availableForPurchaseAt": iso_micro(created),
                        }
                    ],
                    "thumbnail": {
                        "url": f"{world.profile.site}/media/thumbnails/{_slug(name)}-{pk}.png",
                        "alt": name,
                    },
                    "metadata": [],
                    "variants": product_variants,
                },
            }
        )

    out = writers.open("products", time_column="updated", extra=TIME_COLUMNS)
    for p in sorted(products, key=lambda p: (p["updated"], p["node"]["id"])):
        out.add(p["node"]["id"], p["updated"], p["node"], pk=p["pk"], created=p["created"])
    writers.done("products", out)

    out = writers.open(
        "variants", time_column="updated", extra={**TIME_COLUMNS, "product_id": pa.string()}
    )
    for v in sorted(variants, key=lambda v: (v["updated"], v["node"]["id"])):
        node = {**v["node"], "product": {"id": v["product_id"], "name": v["product_name"]}}
        out.add(
            node["id"],
            v["updated"],
            node,
            pk=v["pk"],
            created=v["created"],
            product_id=v["product_id"],
        )
    writers.done("variants", out)

    # Orders: numbered in the order they were placed; popular products sell more.
    popularity = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(variants))))
    variant_index = range(len(variants))
    shoppers = max(20, world.counts["saleor.orders"] // 3)
    # Kept serialized: a large shop's orders fit in memory as text.
    orders: list[tuple[int, str, int, int, str, list[tuple[str, int, str]]]] = []
    line_pk = 0
    number = 0
    per_day = daily_counts(world.counts["saleor.orders"], first_day, WINDOW_DAYS, rng)
    for d, n in enumerate(per_day):
        placed = sorted(
            first_day + d * DAY + rng.randrange(min(DAY, now - first_day - d * DAY))
            for _ in range(n)
        )
        for created in placed:
            number += 1
            shopper = rng.randrange(shoppers)
            srng = stream(world.seed, world.tenant_id, "saleor.shopper", str(shopper))
            fn, ln = srng.choice(FIRST_NAMES), srng.choice(LAST_NAMES)
            email = (
                f"{fn}.{ln}".lower().replace("'", "").replace("ü", "u")
                + f"{shopper}@{srng.choice(FREE_MAIL)}"
            )
            country, city, postal = srng.choice(CITIES)
            registered = srng.random() < 0.6
            address = {
                "firstName": fn,
                "lastName": ln,
                "companyName": "",
                "streetAddress1": f"{srng.randrange(1, 400)} Market Street",
                "streetAddress2": "",
                "city": city,
                "postalCode": postal,
                "country": {"code": country},
                "phone": "",
            }
            lines = []
            picks = set()
            for _ in range(rng.choices((1, 2, 3, 4), weights=(55, 25, 12, 8))[0]):
                picks.add(rng.choices(variant_index, cum_weights=popularity)[0])
            subtotal = 0.0
            for vi in sorted(picks):
                v = variants[vi]
                qty = rng.choices((1, 2, 3), weights=(75, 18, 7))[0]
                line_pk += 1
                unit = v["price"]
                subtotal += unit * qty
                lines.append(
                    {
                        "id": gid("OrderLine", line_pk),
                        "productName": v["product_name"],
                        "variantName": v["node"]["name"],
                        "productSku": v["node"]["sku"],
                        "productVariantId": v["node"]["id"],
                        "variant": {
                            "id": v["node"]["id"],
                            "sku": v["node"]["sku"],
                            "name": v["node"]["name"],
                            "product": {"id": v["product_id"], "name": v["product_name"]},
                        },
                        "quantity": qty,
                        "quantityFulfilled": 0,
                        "unitPrice": taxed(unit, code),
                        "undiscountedUnitPrice": taxed(unit, code),
                        "totalPrice": taxed(unit * qty, code),
                        "taxRate": TAX,
                        "isShippingRequired": True,
                    }
                )
            shipping = 0.0 if subtotal >= 50 else 5.99
            roll = rng.random()
            fulfil_at = created + rng.randrange(DAY // 2, 4 * DAY)
            if roll < 0.02:
                status, payment, charge = "CANCELED", "NOT_CHARGED", "NONE"
                updated = min(created + rng.randrange(600, DAY), now - 1)
            elif fulfil_at >= now:
                status, payment, charge = "UNFULFILLED", "FULLY_CHARGED", "FULL"
                updated = min(created + rng.randrange(5, 300), now - 1)
            elif roll < 0.05:
                status, payment, charge = "FULFILLED", "FULLY_REFUNDED", "NONE"
                updated = min(fulfil_at + rng.randrange(DAY, 14 * DAY), now - 1)
            else:
                status, payment, charge = "FULFILLED", "FULLY_CHARGED", "FULL"
                updated = fulfil_at
            updated = max(updated, created)
            if status == "FULFILLED":
                for line in lines:
                    line["quantityFulfilled"] = line["quantity"]
            order_id = gid("Order", number)
            node = {
                "id": order_id,
                "number": str(number),
                "created": iso_micro(created),
                "updatedAt": iso_micro(updated),
                "status": status,
                "origin": "CHECKOUT",
                "paymentStatus": payment,
                "chargeStatus": charge,
                "authorizeStatus": "FULL",
                "isPaid": payment == "FULLY_CHARGED",
                "userEmail": email,
                "user": {"id": gid("User", shopper + 1), "email": email} if registered else None,
                "channel": channel,
                "languageCodeEnum": "EN",
                "billingAddress": address,
                "shippingAddress": address,
                "shippingMethodName": "Standard" if shipping else "Free shipping",
                "shippingPrice": taxed(shipping, code),
                "subtotal": taxed(subtotal, code),
                "total": taxed(subtotal + shipping, code),
                "totalCharged": money(
                    subtotal + shipping if payment == "FULLY_CHARGED" else 0.0, code
                ),
                "customerNote": "",
                "metadata": [],
                "lines": lines,
            }
            flat = [(x["id"], line_pk - len(lines) + i + 1, dumps(x)) for i, x in enumerate(lines)]
            orders.append((updated, order_id, number, created, dumps(node), flat))

    orders.sort(key=lambda o: (o[0], o[1]))
    out = writers.open("orders", time_column="updated", extra=TIME_COLUMNS)
    for updated, order_id, pk, created, node_json, _lines in orders:
        out.add(order_id, updated, node_json, pk=pk, created=created)
    writers.done("orders", out)

    out = writers.open(
        "order_lines", time_column="updated", extra={**TIME_COLUMNS, "order_id": pa.string()}
    )
    lines_flat: list[tuple[int, str, int, int, str, str]] = []
    for updated, order_id, _pk, created, _node, flat in orders:
        for line_id, line_number, line_json in flat:
            lines_flat.append((updated, line_id, line_number, created, order_id, line_json))
    lines_flat.sort(key=lambda x: (x[0], x[1]))
    for updated, lid, line_number, created, order_id, line_json in lines_flat:
        out.add(lid, updated, line_json, pk=line_number, created=created, order_id=order_id)
    writers.done("order_lines", out)
