"""Amazon Selling Partner API: catalog items, their offers and their fee estimates.

What is read, per tenant and marketplace (one ``marketplaceIds`` value, the
tenant's ``marketplace_id`` from its sourcing configuration):

1. ``catalog_items``: ``searchCatalogItems`` (Catalog Items 2022-04-01,
   ``GET /catalog/2022-04-01/items``) once per keyword of the tenant's sourcing
   configuration (plus a run's ``--keywords``), and for the identifiers in its
   supplier price lists (``identifiers`` + ``identifiersType`` UPC, EAN or ASIN,
   at most 20 per call, the documented maximum). ``pageSize`` 20 (the maximum),
   ``pageToken`` from ``pagination.nextToken`` until it is absent, ``includedData``
   = summaries, salesRanks, identifiers, attributes, dimensions. Keywords are
   searched one phrase per call: the API ranks a combined list as one query, so
   a phrase with few matches would be drowned by a broad one. Items landed before
   that no search returns any more are refreshed with ``getCatalogItem``
   (``GET /catalog/2022-04-01/items/{asin}``): their offers and fees are still read.
2. ``item_offers``: Product Pricing v0 ``getItemOffers``
   (``GET /products/pricing/v0/items/{Asin}/offers?MarketplaceId&ItemCondition=New``)
   for each catalog item not yet read today.
3. ``fee_estimates``: Product Fees v0 ``getMyFeesEstimateForASIN``
   (``POST /products/fees/v0/items/{Asin}/feesEstimate``) at the item's buy-box
   price, else its lowest New price, else its list price, once per item and day.
   The estimate is kept as a structure (referral rate and the fees that do not
   depend on price), so a margin at another price needs no new call.

Offers and fees read the catalog (and the day's offers) from the lake, so each
Dagster asset is one step and a re-run on the same day calls nothing already
landed. Catalog items land once per (ASIN, marketplace): the partition is the
day the item was first seen, kept from the lake, so every later read replaces
the row in place.

What is searched for comes from ``sp_api_inputs.py``. Auth (``sp_api_auth.py``):
Login with Amazon. The tenant's credential is ``{"client_id",
"client_secret", "refresh_token"}``; ``POST BIZOS_LWA_TOKEN_URL`` (form:
``grant_type=refresh_token``) returns an ``access_token`` and its ``expires_in``,
sent as ``x-amz-access-token``. Tokens are cached per tenant and credential
until shortly before they expire; a 403 ``Unauthorized`` (an access token the
service considers expired) triggers one refresh and one retry. The client
secret, the refresh token and every access token are masked in every message.

Rate limits (``sp_api_auth.py``, with the tokens): each operation has its own
token bucket at the default usage plan the API documents
(models/catalog-items-api-model/catalogItems_2022-04-01.json,
models/product-pricing-api-model/productPricingV0.json,
models/product-fees-api-model/productFeesV0.json in amzn/selling-partner-api-models):

==========================  ======  =====
operation                   rate/s  burst
==========================  ======  =====
searchCatalogItems          2       2
getCatalogItem              2       2
getItemOffers               0.5     1
getMyFeesEstimateForASIN    1       2
==========================  ======  =====

A response's ``x-amzn-RateLimit-Limit`` header states the rate the account's
usage plan actually grants for the operation; the bucket adopts it (a partner
with a higher plan goes faster, one with a lower plan slows down before being
throttled). A 429 is retried by the HTTP client after ``Retry-After`` or its
backoff.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import MalformedPage, SourceClient, SourceRequestError
from connectors.landing import TableSpec, read_table
from connectors.sources._common import iso_z, require_list, require_objects
from connectors.sources.sp_api_auth import (
    FEES,
    GET_ITEM,
    NAME,
    OFFERS,
    SEARCH,
    SpApiSession,
)
from connectors.sources.sp_api_inputs import (
    price_list_identifiers,
    search_config,
    split_keywords,
)
from core.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # searchCatalogItems' maximum pageSize
IDENTIFIERS_PER_CALL = 20  # searchCatalogItems' maximum number of identifiers
INCLUDED_DATA = "summaries,salesRanks,identifiers,attributes,dimensions"
ITEM_CONDITION = "New"
CREDENTIAL_FIELDS = ("client_id", "client_secret", "refresh_token")
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")


# -- the tables ----------------------------------------------------------------------
# The declared columns are the lake contract the sourcing models read (issue 10);
# records carry a few more, which land as columns of their own: a catalog item's
# ``first_seen_at`` (its partition, so every later read replaces it in place) and
# ``found_by`` (the search that found it), a fee estimate's ``price_source``
# (buy_box, lowest or list), and ``status`` / ``error`` of an item-level answer.

TABLES: dict[str, TableSpec] = {
    "catalog_items": TableSpec(
        source=NAME,
        name="catalog_items",
        date_field="first_seen_at",
        date_format="iso",
        primary_key=("asin", "marketplace_id"),
        required=("updated_at",),
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
    ),
    "item_offers": TableSpec(
        source=NAME,
        name="item_offers",
        date_field="day",
        date_format="iso",
        primary_key=("asin", "marketplace_id", "day"),
        required=("offer_count", "fetched_at"),
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
    ),
    "fee_estimates": TableSpec(
        source=NAME,
        name="fee_estimates",
        date_field="day",
        date_format="iso",
        primary_key=("asin", "marketplace_id", "day"),
        required=("price", "total_fees", "fetched_at"),
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
    ),
}


# -- the credential ------------------------------------------------------------------


def parse_credential(secret: str) -> dict[str, str]:
    """The three LWA fields of a credential; ValueError naming the first missing one."""
    try:
        parsed = json.loads(secret)
    except ValueError:
        raise ValueError(
            "the sp_api credential must be one JSON object "
            '{"client_id": ..., "client_secret": ..., "refresh_token": ...}'
        ) from None
    if not isinstance(parsed, dict):
        raise ValueError(
            f"the sp_api credential must be a JSON object, not {type(parsed).__name__}"
        )
    for name in CREDENTIAL_FIELDS:
        value = parsed.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the sp_api credential has no {name!r} (a non-empty string)")
    return {name: parsed[name].strip() for name in CREDENTIAL_FIELDS}


def credential(secret: str) -> Credential:
    fields = parse_credential(secret)
    return Credential(
        headers={},
        secrets=[fields["client_secret"], fields["refresh_token"]],
        grant=fields,
    )


_SESSIONS: weakref.WeakKeyDictionary[SourceClient, SpApiSession] = weakref.WeakKeyDictionary()


def session_for(ctx: ReadContext) -> SpApiSession:
    """The session of this client (one per load of a tenant's tables)."""
    session = _SESSIONS.get(ctx.client)
    if session is None:
        settings = _settings(ctx)
        session = SpApiSession(ctx.client, token_url=settings.lwa_token_url, grant=ctx.grant)
        _SESSIONS[ctx.client] = session
        weakref.finalize(ctx.client, session.close)
    return session


def _settings(ctx: ReadContext) -> Settings:
    if ctx.settings is None:
        raise ValueError("the sp_api source reads the lake and the inbox: it needs settings")
    return ctx.settings


# -- reading the catalog -------------------------------------------------------------


def check_search(data: Any) -> None:
    items = require_list(data, "items", where=" (searchCatalogItems)")
    require_objects(items, "items")
    for n, item in enumerate(items):
        if not isinstance(item.get("asin"), str) or not item["asin"]:
            raise MalformedPage(f"items[{n}] has no asin (searchCatalogItems)")
    pagination = data.get("pagination")
    if pagination is not None and not isinstance(pagination, dict):
        raise MalformedPage("'pagination' is not an object (searchCatalogItems)")


def check_item(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("asin"), str):
        raise MalformedPage("no 'asin' in the item (getCatalogItem)")


def _for_marketplace(entries: Any, marketplace_id: str) -> dict[str, Any]:
    """The entry of a per-marketplace list (``summaries``, ``salesRanks``...) for ours."""
    if not isinstance(entries, list):
        return {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("marketplaceId") in (marketplace_id, None):
            return entry
    return {}


LENGTH_CM = {
    "centimeters": 1.0,
    "millimeters": 0.1,
    "meters": 100.0,
    "inches": 2.54,
    "feet": 30.48,
}
WEIGHT_KG = {
    "kilograms": 1.0,
    "grams": 0.001,
    "pounds": 0.45359237,
    "ounces": 0.028349523125,
}


def _measure(dimension: Any, units: Mapping[str, float]) -> float | None:
    """A ``{"unit", "value"}`` dimension in our unit; None for an unknown unit."""
    if not isinstance(dimension, dict):
        return None
    value, unit = dimension.get("value"), str(dimension.get("unit") or "").lower()
    factor = units.get(unit) or units.get(unit + "s")
    if factor is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value) * factor, 4)


def money(value: Any) -> str | None:
    """A JSON amount as an exact decimal string to the cent (``19.99``)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def catalog_record(
    item: Mapping[str, Any], *, marketplace_id: str, read_at: str, first_seen: str, found_by: str
) -> dict[str, Any]:
    """One Catalog Items 2022-04-01 item as a row of ``catalog_items``."""
    summary = _for_marketplace(item.get("summaries"), marketplace_id)
    ranks = _for_marketplace(item.get("salesRanks"), marketplace_id)
    group_ranks = ranks.get("displayGroupRanks") or []
    top = group_ranks[0] if group_ranks and isinstance(group_ranks[0], dict) else {}
    rank = top.get("rank")
    ids: dict[str, str] = {}
    for entry in _for_marketplace(item.get("identifiers"), marketplace_id).get("identifiers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
            ids.setdefault(str(entry.get("identifierType")).upper(), entry["identifier"])
    dims = _for_marketplace(item.get("dimensions"), marketplace_id).get("item") or {}
    attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
    prices = [
        p
        for p in (attributes or {}).get("list_price") or []
        if isinstance(p, dict) and p.get("marketplace_id") in (marketplace_id, None)
    ]
    price = prices[0] if prices else {}
    return {
        "asin": item.get("asin"),
        "marketplace_id": marketplace_id,
        "title": summary.get("itemName"),
        "brand": summary.get("brand"),
        "category": top.get("websiteDisplayGroup") or summary.get("websiteDisplayGroup"),
        "category_title": top.get("title") or summary.get("websiteDisplayGroupName"),
        "sales_rank": rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        "upc": ids.get("UPC"),
        "ean": ids.get("EAN"),
        "item_weight_kg": _measure(dims.get("weight"), WEIGHT_KG),
        "length_cm": _measure(dims.get("length"), LENGTH_CM),
        "width_cm": _measure(dims.get("width"), LENGTH_CM),
        "height_cm": _measure(dims.get("height"), LENGTH_CM),
        "list_price": money(price.get("value_with_tax", price.get("value"))),
        "currency": price.get("currency"),
        "updated_at": read_at,
        "first_seen_at": first_seen,
        "found_by": found_by,
    }


def _lake_rows(
    settings: Settings, table: str, tenant_id: str, columns: list[str], **equal: str
) -> list[dict[str, Any]]:
    landed = read_table(settings, NAME, table, tenant_id)
    if landed is None or landed.num_rows == 0:
        return []
    for name, value in equal.items():
        landed = landed.filter(pc.equal(landed[name], value))
    return landed.select([c for c in columns if c in landed.column_names]).to_pylist()


@dataclass(frozen=True)
class _Query:
    label: str
    params: dict[str, Any]


def catalog_queries(
    keywords: list[str],
    identifiers: Mapping[str, list[str]],
    marketplace_id: str,
    page_size: int = PAGE_SIZE,
) -> list[_Query]:
    """The searches of one catalog read: a phrase each, then identifiers by twenty."""
    size = max(1, min(page_size, PAGE_SIZE))
    base = {"marketplaceIds": marketplace_id, "includedData": INCLUDED_DATA, "pageSize": size}
    queries = [_Query(f"keyword:{k}", {**base, "keywords": k}) for k in keywords]
    for kind in ("ASIN", "UPC", "EAN"):
        values = identifiers.get(kind, [])
        for start in range(0, len(values), IDENTIFIERS_PER_CALL):
            chunk = values[start : start + IDENTIFIERS_PER_CALL]
            queries.append(
                _Query(
                    f"{kind}",
                    {**base, "identifiers": ",".join(chunk), "identifiersType": kind},
                )
            )
    return queries


def read_catalog(ctx: ReadContext) -> Iterator[Page]:
    settings = _settings(ctx)
    tenant_id = ctx.client.tenant_id
    config = search_config(tenant_id)
    marketplace_id = str(ctx.options.get("marketplace_id") or config.marketplace_id)
    keywords = split_keywords([*config.keywords, *split_keywords(ctx.options.get("keywords"))])
    identifiers = price_list_identifiers(settings, tenant_id)
    first_seen = {
        row["asin"]: row["first_seen_at"]
        for row in _lake_rows(
            settings,
            "catalog_items",
            tenant_id,
            ["asin", "first_seen_at"],
            marketplace_id=marketplace_id,
        )
        if row.get("first_seen_at")
    }
    session = session_for(ctx)
    read_at = iso_z(ctx.now)
    seen: set[str] = set()
    queries = catalog_queries(keywords, identifiers, marketplace_id, ctx.page_size)
    if not queries:
        log.warning(
            "sp_api tenant %s: no keywords (config/sourcing) and no price-list identifiers: "
            "nothing to search",
            tenant_id,
        )
    path = "catalog/2022-04-01/items"
    for n, query in enumerate(queries, start=1):
        token: str | None = None
        while True:
            params = {**query.params, "pageToken": token}
            data = session.call(ctx.client, SEARCH, "GET", path, params=params, check=check_search)
            records = []
            for item in data["items"]:
                asin = item["asin"]
                if asin in seen:
                    continue
                seen.add(asin)
                records.append(
                    catalog_record(
                        item,
                        marketplace_id=marketplace_id,
                        read_at=read_at,
                        first_seen=first_seen.get(asin, read_at),
                        found_by=query.label,
                    )
                )
            token = (data.get("pagination") or {}).get("nextToken") or None
            done = n - (token is not None)
            cursor = {"read_at": read_at, "queries_done": done, "items": len(seen)}
            yield Page(records, ctx.client.describe("GET", path, params), cursor)
            if token is None:
                break
    # Items landed before that no search returned this time (a keyword dropped, a
    # price list changed) still get their offers and fees read: refresh them too,
    # one getCatalogItem each, so their rank and price are of today as well.
    for asin in sorted(set(first_seen) - seen):
        item_path = f"{path}/{asin}"
        params = {"marketplaceIds": marketplace_id, "includedData": INCLUDED_DATA}
        try:
            item = session.call(
                ctx.client, GET_ITEM, "GET", item_path, params=params, check=check_item
            )
        except SourceRequestError as exc:
            if "HTTP 404" not in str(exc):
                raise
            log.info("sp_api tenant %s: %s is no longer in the catalog (404)", tenant_id, asin)
            continue
        seen.add(asin)
        record = catalog_record(
            item,
            marketplace_id=marketplace_id,
            read_at=read_at,
            first_seen=first_seen[asin],
            found_by="known",
        )
        cursor = {"read_at": read_at, "queries_done": len(queries), "items": len(seen)}
        yield Page([record], ctx.client.describe("GET", item_path, params), cursor)


# -- offers --------------------------------------------------------------------------


def check_offers(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        raise MalformedPage("no 'payload' object (getItemOffers)")
    payload = data["payload"]
    if payload.get("status") not in (None, "Success"):
        return  # an item-level error: kept and landed as what it is
    summary = payload.get("Summary")
    if not isinstance(summary, dict) or not isinstance(summary.get("TotalOfferCount"), int):
        raise MalformedPage("payload.Summary.TotalOfferCount is missing (getItemOffers)")


def _landed(price: Any) -> tuple[Decimal | None, str | None]:
    """A price entry's LandedPrice (ListingPrice + Shipping when it has none)."""
    if not isinstance(price, dict):
        return None, None
    landed = price.get("LandedPrice")
    if isinstance(landed, dict) and landed.get("Amount") is not None:
        amount = money(landed.get("Amount"))
        return (Decimal(amount) if amount else None), landed.get("CurrencyCode")
    listing, shipping = price.get("ListingPrice") or {}, price.get("Shipping") or {}
    total = money(listing.get("Amount"))
    if total is None:
        return None, None
    ship = money(shipping.get("Amount")) or "0"
    return Decimal(total) + Decimal(ship), listing.get("CurrencyCode")


def offers_record(
    payload: Mapping[str, Any], *, asin: str, marketplace_id: str, day: str, fetched_at: str
) -> dict[str, Any]:
    """A getItemOffers payload as a row of ``item_offers`` (New condition)."""
    summary = payload.get("Summary") if isinstance(payload.get("Summary"), dict) else {}
    summary = summary or {}
    fba = 0
    for count in summary.get("NumberOfOffers") or []:
        if (
            isinstance(count, dict)
            and str(count.get("condition", "")).lower() == "new"
            and count.get("fulfillmentChannel") == "Amazon"
        ):
            fba += int(count.get("OfferCount") or 0)
    currency = None
    lowest: Decimal | None = None
    for entry in summary.get("LowestPrices") or []:
        if isinstance(entry, dict) and str(entry.get("condition", "")).lower() == "new":
            amount, code = _landed(entry)
            if amount is not None and (lowest is None or amount < lowest):
                lowest, currency = amount, code or currency
    buy_box: Decimal | None = None
    for entry in summary.get("BuyBoxPrices") or []:
        if isinstance(entry, dict) and str(entry.get("condition", "")).lower() == "new":
            buy_box, code = _landed(entry)
            currency = code or currency
            break
    winner = [
        o for o in payload.get("Offers") or [] if isinstance(o, dict) and o.get("IsBuyBoxWinner")
    ]
    total = summary.get("TotalOfferCount")
    return {
        "asin": asin,
        "marketplace_id": marketplace_id,
        "day": day,
        "item_condition": payload.get("ItemCondition") or ITEM_CONDITION,
        "offer_count": total if isinstance(total, int) and not isinstance(total, bool) else None,
        "fba_offer_count": fba,
        "lowest_price": None if lowest is None else str(lowest.quantize(CENT)),
        "buy_box_price": None if buy_box is None else str(buy_box.quantize(CENT)),
        "currency": currency,
        "buy_box_is_fba": bool(winner[0].get("IsFulfilledByAmazon")) if winner else None,
        "fetched_at": fetched_at,
        "status": payload.get("status") or "Success",
    }


def read_offers(ctx: ReadContext) -> Iterator[Page]:
    settings = _settings(ctx)
    tenant_id = ctx.client.tenant_id
    config = search_config(tenant_id)
    marketplace_id = str(ctx.options.get("marketplace_id") or config.marketplace_id)
    day = ctx.now.date().isoformat()
    asins = sorted(
        {
            r["asin"]
            for r in _lake_rows(
                settings, "catalog_items", tenant_id, ["asin"], marketplace_id=marketplace_id
            )
        }
    )
    done = (
        set()
        if ctx.full_refresh
        else {
            r["asin"]
            for r in _lake_rows(
                settings, "item_offers", tenant_id, ["asin"], marketplace_id=marketplace_id, day=day
            )
        }
    )
    todo = [a for a in asins if a not in done]
    session = session_for(ctx) if todo else None
    for n, asin in enumerate(todo, start=1):
        assert session is not None
        path = f"products/pricing/v0/items/{asin}/offers"
        params = {"MarketplaceId": marketplace_id, "ItemCondition": ITEM_CONDITION}
        try:
            data = session.call(ctx.client, OFFERS, "GET", path, params=params, check=check_offers)
        except SourceRequestError as exc:
            if "HTTP 404" not in str(exc):
                raise
            log.info("sp_api tenant %s: no offers listing for %s (404)", tenant_id, asin)
            continue
        record = offers_record(
            data["payload"],
            asin=asin,
            marketplace_id=marketplace_id,
            day=day,
            fetched_at=iso_z(datetime.now(UTC)),
        )
        yield Page(
            [record],
            ctx.client.describe("GET", path, params),
            {"day": day, "asins_done": len(done) + n, "asins": len(asins)},
        )


# -- fees ----------------------------------------------------------------------------


FEE_COLUMNS = {
    "ReferralFee": "referral_fee",
    "FBAFees": "fba_fee",
    "VariableClosingFee": "variable_closing_fee",
    "PerItemFee": "per_item_fee",
}


def check_fees(data: Any) -> None:
    payload = data.get("payload") if isinstance(data, dict) else None
    result = payload.get("FeesEstimateResult") if isinstance(payload, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("Status"), str):
        raise MalformedPage("no payload.FeesEstimateResult.Status (getMyFeesEstimateForASIN)")


def fees_record(
    result: Mapping[str, Any],
    *,
    asin: str,
    marketplace_id: str,
    day: str,
    price: Decimal,
    price_source: str,
    currency: str | None,
    fetched_at: str,
) -> dict[str, Any]:
    """A FeesEstimateResult as a row of ``fee_estimates``: each fee, and the split
    into a rate on price (referral) and the fees that do not move with price."""
    record: dict[str, Any] = {
        "asin": asin,
        "marketplace_id": marketplace_id,
        "day": day,
        "price": str(price.quantize(CENT)),
        "price_source": price_source,
        "currency": currency,
        "fetched_at": fetched_at,
        "status": result.get("Status"),
    }
    estimate = result.get("FeesEstimate") if result.get("Status") == "Success" else None
    if not isinstance(estimate, dict):
        error = result.get("Error") if isinstance(result.get("Error"), dict) else {}
        record["error"] = f"{(error or {}).get('Code', '')}: {(error or {}).get('Message', '')}"
        record["total_fees"] = None  # quarantined: no estimate to keep
        return record
    fees = dict.fromkeys(FEE_COLUMNS.values(), Decimal(0))
    other = Decimal(0)
    for detail in estimate.get("FeeDetailList") or []:
        if not isinstance(detail, dict):
            continue
        final = detail.get("FinalFee") or detail.get("FeeAmount") or {}
        amount = money(final.get("Amount")) if isinstance(final, dict) else None
        if amount is None:
            continue
        column = FEE_COLUMNS.get(str(detail.get("FeeType")))
        if column is None:
            other += Decimal(amount)
        else:
            fees[column] += Decimal(amount)
    total_money = estimate.get("TotalFeesEstimate") or {}
    total_text = money(total_money.get("Amount")) if isinstance(total_money, dict) else None
    total = Decimal(total_text) if total_text is not None else sum(fees.values(), other)
    referral = fees["referral_fee"]
    record.update({name: str(value.quantize(CENT)) for name, value in fees.items()})
    record["referral_rate"] = str((referral / price).quantize(RATE_PLACES)) if price else None
    record["fixed_fees"] = str((total - referral).quantize(CENT))
    record["total_fees"] = str(total.quantize(CENT))
    record["currency"] = total_money.get("CurrencyCode") or currency
    return record


def read_fees(ctx: ReadContext) -> Iterator[Page]:
    settings = _settings(ctx)
    tenant_id = ctx.client.tenant_id
    config = search_config(tenant_id)
    marketplace_id = str(ctx.options.get("marketplace_id") or config.marketplace_id)
    day = ctx.now.date().isoformat()
    offers = {
        r["asin"]: r
        for r in _lake_rows(
            settings,
            "item_offers",
            tenant_id,
            ["asin", "buy_box_price", "lowest_price", "currency"],
            marketplace_id=marketplace_id,
            day=day,
        )
    }
    catalog = {
        r["asin"]: r
        for r in _lake_rows(
            settings,
            "catalog_items",
            tenant_id,
            ["asin", "list_price", "currency"],
            marketplace_id=marketplace_id,
        )
    }
    done = (
        set()
        if ctx.full_refresh
        else {
            r["asin"]
            for r in _lake_rows(
                settings,
                "fee_estimates",
                tenant_id,
                ["asin"],
                marketplace_id=marketplace_id,
                day=day,
            )
        }
    )
    todo = []
    for asin in sorted(set(catalog) | set(offers)):
        if asin in done:
            continue
        offer, item = offers.get(asin) or {}, catalog.get(asin) or {}
        for source, price, currency in (
            ("buy_box", offer.get("buy_box_price"), offer.get("currency")),
            ("lowest", offer.get("lowest_price"), offer.get("currency")),
            ("list", item.get("list_price"), item.get("currency")),
        ):
            if price:
                todo.append((asin, Decimal(price), source, currency or item.get("currency")))
                break
    session = session_for(ctx) if todo else None
    for n, (asin, price, source, currency) in enumerate(todo, start=1):
        assert session is not None
        path = f"products/fees/v0/items/{asin}/feesEstimate"
        body = {
            "FeesEstimateRequest": {
                "MarketplaceId": marketplace_id,
                "IsAmazonFulfilled": True,
                "PriceToEstimateFees": {
                    "ListingPrice": {"CurrencyCode": currency, "Amount": float(price)},
                    "Shipping": {"CurrencyCode": currency, "Amount": 0},
                },
                "Identifier": f"{asin}-{day}",
            }
        }
        data = session.call(ctx.client, FEES, "POST", path, body=body, check=check_fees)
        record = fees_record(
            data["payload"]["FeesEstimateResult"],
            asin=asin,
            marketplace_id=marketplace_id,
            day=day,
            price=price,
            price_source=source,
            currency=currency,
            fetched_at=iso_z(datetime.now(UTC)),
        )
        yield Page(
            [record],
            ctx.client.describe("POST", path, {"price": str(price)}),
            {"day": day, "asins_done": len(done) + n, "asins": len(todo) + len(done)},
        )


READERS: dict[str, Callable[[ReadContext], Iterator[Page]]] = {
    "catalog_items": read_catalog,
    "item_offers": read_offers,
    "fee_estimates": read_fees,
}


def read(ctx: ReadContext) -> Iterator[Page]:
    if ctx.window is not None:
        # Nothing in SP-API is read by time: a reload of a span is a normal read.
        log.info("sp_api reads the current catalog, offers and fees: the window is ignored")
    return READERS[ctx.spec.name](ctx)


SOURCE = SourceDef(
    name=NAME,
    tables=TABLES,
    credential=credential,
    read=read,
    page_size=PAGE_SIZE,
    check_secret=parse_credential,
    read_by_time=False,
)
