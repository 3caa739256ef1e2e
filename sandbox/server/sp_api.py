"""Amazon's Selling Partner API under ``/sp_api``, and its Login with Amazon token endpoint.

- ``POST /sp_api/auth/o2/token``: form ``grant_type=refresh_token``, ``client_id``,
  ``client_secret``, ``refresh_token`` -> ``{"access_token", "refresh_token",
  "token_type": "bearer", "expires_in"}``; LWA's ``invalid_grant`` /
  ``invalid_client`` errors otherwise.
- ``GET /sp_api/catalog/2022-04-01/items`` (searchCatalogItems): ``marketplaceIds``
  (exactly one), ``keywords`` (every word of a phrase in the title, brand or
  category; phrases separated by commas, any phrase matching) or ``identifiers``
  (at most 20) with ``identifiersType``, ``includedData``, ``pageSize`` (at most
  20), ``pageToken``; ``{"numberOfResults", "pagination": {"nextToken"},
  "refinements", "items"}``, items holding only the data sets asked for.
- ``GET /sp_api/catalog/2022-04-01/items/{asin}`` (getCatalogItem).
- ``GET /sp_api/products/pricing/v0/items/{asin}/offers`` (getItemOffers):
  ``MarketplaceId``, ``ItemCondition``; ``{"payload": {...}}`` with the day's
  prices (a deterministic drift of a few percent per ASIN and day, so the
  offers kept day after day form a price history).
- ``POST /sp_api/products/fees/v0/items/{asin}/feesEstimate``
  (getMyFeesEstimateForASIN): the fees at the price asked about, from the item's
  fee schedule.

Auth: ``x-amz-access-token`` must be a token this endpoint issued and that has
not expired; otherwise 403 with SP-API's ``Unauthorized`` error. Successful
responses carry ``x-amzn-RateLimit-Limit``: the rate of the sandbox's usage
plan, deliberately generous so the demo does not wait minutes at the default
rates (tests lower it). ``GET/POST /_sandbox/sp_api`` reads and changes the plan:
``token_lifetime`` (seconds, the ``expires_in`` of new tokens), ``rates`` (per
operation) and ``expire_tokens: true`` (every token issued so far is refused,
as if the service's clock had passed them). 429, 5xx and the rest come from the
fault book like every provider's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.server.context import Sandbox, decode_cursor, encode_cursor, json_response

SOURCE = "sp_api"
MAX_PAGE_SIZE = 20
MAX_IDENTIFIERS = 20
DATASETS = {
    "attributes", "classifications", "dimensions", "identifiers", "images", "productTypes",
    "relationships", "salesRanks", "summaries", "vendorDetails",
}  # fmt: skip
IDENTIFIER_TYPES = {"ASIN", "EAN", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC"}
DEFAULT_RATES = {
    "searchCatalogItems": 50.0,
    "getCatalogItem": 50.0,
    "getItemOffers": 50.0,
    "getMyFeesEstimateForASIN": 50.0,
}
CENT = Decimal("0.01")


@dataclass
class Plan:
    """The sandbox's usage plan and the access tokens it has issued."""

    token_lifetime: int = 3600
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    """access token -> (tenant, time.time() it expires)."""
    issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            live = sum(1 for _, until in self.tokens.values() if until > time.time())
            return {
                "token_lifetime": self.token_lifetime,
                "rates": dict(self.rates),
                "tokens_issued": self.issued,
                "tokens_live": live,
            }


def errors(status: int, code: str, message: str, details: str = "") -> Response:
    return json_response(
        {"errors": [{"code": code, "message": message, "details": details}]}, status
    )


def error_body(status: int) -> dict[str, Any]:
    if status == 429:
        code, message = "QuotaExceeded", "You exceeded your quota for the requested resource."
    elif status == 503:
        code, message = "ServiceUnavailable", "Service temporarily unavailable."
    else:
        code, message = "InternalFailure", "We encountered an internal error. Please try again."
    return {"errors": [{"code": code, "message": message, "details": ""}]}


class Catalog:
    """One tenant's generated items, offers and fee schedules, loaded on first use."""

    def __init__(self, items: dict[str, dict[str, Any]], offers: dict[str, dict[str, Any]],
                 fees: dict[str, dict[str, Any]]) -> None:  # fmt: skip
        self.items = items
        self.offers = offers
        self.fees = fees
        self.asins = sorted(items)
        self.text = {
            asin: " ".join(
                [
                    str(s.get("itemName", "")),
                    str(s.get("brand", "")),
                    str(s.get("websiteDisplayGroupName", "")),
                ]
            ).lower()
            for asin, item in items.items()
            for s in (item.get("summaries") or [{}])[:1]
        }
        self.by_identifier: dict[tuple[str, str], list[str]] = {}
        for asin, item in items.items():
            self.by_identifier.setdefault(("ASIN", asin), []).append(asin)
            for group in item.get("identifiers") or []:
                for entry in group.get("identifiers") or []:
                    key = (str(entry.get("identifierType")), str(entry.get("identifier")))
                    self.by_identifier.setdefault(key, []).append(asin)


def _words(text: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w}


def day_price(amount: float, asin: str, day: str) -> Decimal:
    """The day's price: within a few percent of the generated one, the same all day."""
    digest = hashlib.sha256(f"{asin}:{day}".encode()).digest()
    drift = (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 0.06
    return (Decimal(str(amount)) * (1 + Decimal(str(round(drift, 4))))).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def _drifted(payload: dict[str, Any], asin: str, day: str) -> dict[str, Any]:
    """The offers payload at today's prices (every money amount but shipping moved alike)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            if set(value) == {"CurrencyCode", "Amount"} and key != "Shipping":
                return {**value, "Amount": float(day_price(value["Amount"], asin, day))}
            if "LandedPrice" in value and isinstance(value.get("Shipping"), dict):
                listing = walk(value.get("ListingPrice"), "ListingPrice")
                landed = Decimal(str(listing["Amount"])) + Decimal(str(value["Shipping"]["Amount"]))
                return {
                    **{k: walk(v, k) for k, v in value.items()},
                    "ListingPrice": listing,
                    "LandedPrice": {**value["LandedPrice"], "Amount": float(landed)},
                }
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        return value

    drifted: dict[str, Any] = walk(payload)
    return drifted


def fee_estimate(schedule: dict[str, str], price: Decimal) -> dict[str, Decimal]:
    """The fees at ``price``: the referral fee a share of it (with its minimum), the rest fixed."""
    referral = max(
        Decimal(schedule["referral_minimum"]),
        (price * Decimal(schedule["referral_rate"])).quantize(CENT, rounding=ROUND_HALF_UP),
    )
    return {
        "ReferralFee": referral,
        "FBAFees": Decimal(schedule["fba_fee"]),
        "VariableClosingFee": Decimal(schedule["variable_closing_fee"]),
        "PerItemFee": Decimal(schedule["per_item_fee"]),
    }


def register(app: FastAPI, sb: Sandbox) -> None:
    plan = Plan()
    app.state.sp_api = plan
    catalogs: dict[str, Catalog] = {}
    catalogs_lock = threading.Lock()
    by_refresh: dict[str, str] = {}
    clients: dict[str, tuple[str, str]] = {}
    for tenant_id, sources in sb.keys.credentials.items():
        entry = sources.get(SOURCE)
        if entry and entry.get("refresh_token"):
            by_refresh[entry["refresh_token"]] = tenant_id
            clients[tenant_id] = (entry["client_id"], entry["client_secret"])

    def catalog_of(tenant_id: str) -> Catalog | None:
        with catalogs_lock:
            if tenant_id in catalogs:
                return catalogs[tenant_id]
            tables = {}
            for table in ("catalog_items", "item_offers", "fee_schedules"):
                ref = sb.store.table(tenant_id, SOURCE, table)
                if ref is None:
                    return None
                rows = sb.store.query(f"SELECT id, payload FROM {ref.sql} ORDER BY id")
                tables[table] = {str(i): json.loads(p) for i, p in rows}
            found = Catalog(tables["catalog_items"], tables["item_offers"], tables["fee_schedules"])
            catalogs[tenant_id] = found
            return found

    def tenant_of(request: Request) -> tuple[str | None, Response | None]:
        token = request.headers.get("x-amz-access-token")
        if not token:
            return None, errors(
                403, "Unauthorized", "Access to requested resource is denied.",
                "The request has no x-amz-access-token header.",
            )  # fmt: skip
        with plan.lock:
            found = plan.tokens.get(token)
        if found is None:
            return None, errors(
                403, "Unauthorized", "Access to requested resource is denied.",
                "The access token you provided is revoked, malformed or invalid.",
            )  # fmt: skip
        tenant_id, until = found
        if time.time() >= until:
            return None, errors(
                403, "Unauthorized", "Access to requested resource is denied.",
                "The access token you provided has expired.",
            )  # fmt: skip
        return tenant_id, None

    def limited(response: Response, operation: str) -> Response:
        rate = plan.rates.get(operation)
        if rate is not None:
            response.headers["x-amzn-RateLimit-Limit"] = f"{rate:g}"
        return response

    # -- Login with Amazon -----------------------------------------------------------
    @app.post("/sp_api/auth/o2/token")
    async def token(request: Request) -> Response:
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            return json_response(
                {"error": "invalid_request", "error_description": "The request is missing a "
                 "required parameter: grant_type or refresh_token"}, 400,
            )  # fmt: skip
        tenant_id = by_refresh.get(form["refresh_token"])
        if tenant_id is None:
            return json_response(
                {"error": "invalid_grant",
                 "error_description": "The request has an invalid grant parameter : refresh_token"},
                400,
            )  # fmt: skip
        if clients.get(tenant_id) != (form.get("client_id"), form.get("client_secret")):
            return json_response(
                {"error": "invalid_client",
                 "error_description": "Client authentication failed"}, 401,
            )  # fmt: skip
        access = "Atza|" + secrets.token_urlsafe(96)
        with plan.lock:
            lifetime = plan.token_lifetime
            plan.tokens[access] = (tenant_id, time.time() + lifetime)
            plan.issued += 1
        return json_response(
            {
                "access_token": access,
                "refresh_token": form["refresh_token"],
                "token_type": "bearer",
                "expires_in": lifetime,
            }
        )

    # -- Catalog Items 2022-04-01 ------------------------------------------------------
    def datasets(q: Any) -> tuple[set[str] | None, Response | None]:
        wanted = {d for d in (q.get("includedData") or "summaries").split(",") if d}
        unknown = sorted(wanted - DATASETS)
        if unknown:
            return None, errors(400, "InvalidInput", f"Invalid includedData value: {unknown[0]}.")
        return wanted, None

    def marketplace(q: Any, name: str) -> tuple[str | None, Response | None]:
        values = [v for v in (q.get(name) or "").split(",") if v]
        if len(values) != 1:
            return None, errors(
                400, "InvalidInput", f"{name} must contain exactly one marketplace identifier."
            )
        return values[0], None

    def shaped(item: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
        return {"asin": item["asin"], **{k: v for k, v in item.items() if k in wanted}}

    @app.get("/sp_api/catalog/2022-04-01/items")
    def search_items(request: Request) -> Response:
        tenant_id, refused = tenant_of(request)
        if refused is not None or tenant_id is None:
            return refused or errors(403, "Unauthorized", "Access to requested resource is denied.")
        q = request.query_params
        market, bad = marketplace(q, "marketplaceIds")
        if bad is not None:
            return bad
        wanted, bad = datasets(q)
        if bad is not None or wanted is None:
            return bad or errors(400, "InvalidInput", "Invalid includedData.")
        keywords, identifiers = q.get("keywords"), q.get("identifiers")
        if bool(keywords) == bool(identifiers):
            return errors(
                400, "InvalidInput", "Exactly one of keywords or identifiers is required."
            )
        try:
            size = int(q.get("pageSize", "10"))
        except ValueError:
            return errors(400, "InvalidInput", "pageSize must be an integer.")
        if not 1 <= size <= MAX_PAGE_SIZE:
            return errors(400, "InvalidInput", f"pageSize must be between 1 and {MAX_PAGE_SIZE}.")
        found = catalog_of(tenant_id)
        if found is None:
            return errors(404, "NotFound", "No catalog for this selling partner.")
        if identifiers:
            kind = q.get("identifiersType")
            if kind not in IDENTIFIER_TYPES:
                return errors(400, "InvalidInput", "identifiersType is required with identifiers.")
            values = [v.strip() for v in identifiers.split(",") if v.strip()]
            if len(values) > MAX_IDENTIFIERS:
                return errors(
                    400,
                    "InvalidInput",
                    f"identifiers must contain at most {MAX_IDENTIFIERS} values.",
                )
            matched: dict[str, None] = {}
            for value in values:
                for asin in found.by_identifier.get((kind, value), []):
                    matched.setdefault(asin, None)
            asins = list(matched)
            query_key = f"{kind}:{','.join(values)}"
        else:
            phrases = [_words(p) for p in str(keywords).split(",") if _words(p)]
            if not phrases or len(phrases) > 20:
                return errors(400, "InvalidInput", "keywords must hold 1 to 20 keywords.")
            asins = [a for a in found.asins if any(p <= _words(found.text[a]) for p in phrases)]
            query_key = f"k:{keywords}"
        start = 0
        if q.get("pageToken"):
            try:
                tok = decode_cursor(q["pageToken"])
                if tok.get("t") != tenant_id or tok.get("q") != query_key:
                    raise ValueError("token of another query")
                start = int(tok["o"])
            except (ValueError, KeyError, TypeError, AttributeError):
                return errors(400, "InvalidInput", "Invalid pageToken.")
        page = asins[start : start + size]
        pagination: dict[str, str] = {}
        if start + size < len(asins):
            pagination["nextToken"] = encode_cursor(
                {"t": tenant_id, "q": query_key, "o": start + size}
            )
        if start > 0:
            pagination["previousToken"] = encode_cursor(
                {"t": tenant_id, "q": query_key, "o": max(0, start - size)}
            )
        brands: dict[str, int] = {}
        for asin in asins:
            brand = (found.items[asin].get("summaries") or [{}])[0].get("brand")
            if brand:
                brands[brand] = brands.get(brand, 0) + 1
        body = {
            "numberOfResults": len(asins),
            "pagination": pagination,
            "refinements": {
                "brands": [
                    {"brandName": b, "numberOfResults": n} for b, n in sorted(brands.items())
                ],
                "classifications": [],
            },
            "items": [shaped(found.items[a], wanted) for a in page],
        }
        return limited(json_response(body), "searchCatalogItems")

    @app.get("/sp_api/catalog/2022-04-01/items/{asin}")
    def get_item(asin: str, request: Request) -> Response:
        tenant_id, refused = tenant_of(request)
        if refused is not None or tenant_id is None:
            return refused or errors(403, "Unauthorized", "Access to requested resource is denied.")
        market, bad = marketplace(request.query_params, "marketplaceIds")
        if bad is not None:
            return bad
        wanted, bad = datasets(request.query_params)
        if bad is not None or wanted is None:
            return bad or errors(400, "InvalidInput", "Invalid includedData.")
        found = catalog_of(tenant_id)
        if found is None or asin not in found.items:
            return errors(
                404, "NotFound", f"Requested item '{asin}' not found in marketplace(s) {market}."
            )
        return limited(json_response(shaped(found.items[asin], wanted)), "getCatalogItem")

    # -- Product Pricing v0 ------------------------------------------------------------
    @app.get("/sp_api/products/pricing/v0/items/{asin}/offers")
    def item_offers(asin: str, request: Request) -> Response:
        tenant_id, refused = tenant_of(request)
        if refused is not None or tenant_id is None:
            return refused or errors(403, "Unauthorized", "Access to requested resource is denied.")
        q = request.query_params
        if not q.get("MarketplaceId"):
            return errors(400, "InvalidInput", "Missing required parameter: MarketplaceId.")
        condition = q.get("ItemCondition")
        if condition not in {"New", "Used", "Collectible", "Refurbished", "Club"}:
            return errors(400, "InvalidInput", "Invalid or missing ItemCondition.")
        found = catalog_of(tenant_id)
        if found is None or asin not in found.offers:
            return errors(404, "NotFound", f"Item {asin} not found.")
        payload = found.offers[asin]
        if condition != "New":
            payload = {**payload, "ItemCondition": condition,
                       "Summary": {"TotalOfferCount": 0}, "Offers": []}  # fmt: skip
        today = datetime.now(UTC).date().isoformat()
        body = {"payload": _drifted(payload, asin, today)}
        return limited(json_response(body), "getItemOffers")

    # -- Product Fees v0 ---------------------------------------------------------------
    @app.post("/sp_api/products/fees/v0/items/{asin}/feesEstimate")
    async def fees_estimate(asin: str, request: Request) -> Response:
        tenant_id, refused = tenant_of(request)
        if refused is not None or tenant_id is None:
            return refused or errors(403, "Unauthorized", "Access to requested resource is denied.")
        try:
            body = json.loads(await request.body())
            req = body["FeesEstimateRequest"]
            market = req["MarketplaceId"]
            listing = req["PriceToEstimateFees"]["ListingPrice"]
            price = Decimal(str(listing["Amount"]))
            currency = str(listing["CurrencyCode"])
            identifier = str(req["Identifier"])
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return errors(
                400, "InvalidInput", "FeesEstimateRequest needs MarketplaceId, Identifier and "
                "PriceToEstimateFees.ListingPrice {CurrencyCode, Amount}.",
            )  # fmt: skip
        found = catalog_of(tenant_id)
        if found is None or asin not in found.fees:
            return errors(404, "NotFound", f"Item {asin} not found.")
        identifier_json = {
            "MarketplaceId": market,
            "IdType": "ASIN",
            "IdValue": asin,
            "IsAmazonFulfilled": bool(req.get("IsAmazonFulfilled")),
            "PriceToEstimateFees": req["PriceToEstimateFees"],
            "SellerInputIdentifier": identifier,
            "SellerId": "A" + hashlib.sha256(tenant_id.encode()).hexdigest()[:13].upper(),
        }
        if price <= 0:
            result: dict[str, Any] = {
                "Status": "ClientError",
                "FeesEstimateIdentifier": identifier_json,
                "Error": {"Type": "Sender", "Code": "InvalidParameterValue",
                          "Message": "The price must be greater than zero.", "Detail": []},
            }  # fmt: skip
        else:
            fees = fee_estimate(found.fees[asin], price)
            if not req.get("IsAmazonFulfilled"):
                fees["FBAFees"] = Decimal("0.00")

            def money(amount: Decimal) -> dict[str, Any]:
                return {"CurrencyCode": currency, "Amount": float(amount)}

            result = {
                "Status": "Success",
                "FeesEstimateIdentifier": identifier_json,
                "FeesEstimate": {
                    "TimeOfFeesEstimation": datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y"),
                    "TotalFeesEstimate": money(sum(fees.values(), Decimal(0))),
                    "FeeDetailList": [
                        {
                            "FeeType": kind,
                            "FeeAmount": money(amount),
                            "FeePromotion": money(Decimal("0.00")),
                            "FinalFee": money(amount),
                        }
                        for kind, amount in fees.items()
                    ],
                },
            }
        return limited(
            json_response({"payload": {"FeesEstimateResult": result}}), "getMyFeesEstimateForASIN"
        )

    # -- the sandbox's own knobs ---------------------------------------------------------
    @app.get("/_sandbox/sp_api")
    def get_plan() -> Response:
        return json_response(plan.to_json())

    @app.post("/_sandbox/sp_api")
    async def set_plan(request: Request) -> Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise TypeError("expected a JSON object")
            unknown = sorted(set(spec) - {"token_lifetime", "rates", "expire_tokens"})
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(unknown)}")
            with plan.lock:
                if "token_lifetime" in spec:
                    lifetime = int(spec["token_lifetime"])
                    if lifetime < 1:
                        raise ValueError("token_lifetime must be at least 1 second")
                    plan.token_lifetime = lifetime
                for operation, rate in (spec.get("rates") or {}).items():
                    if operation not in DEFAULT_RATES or float(rate) <= 0:
                        raise ValueError(f"rates: {operation!r} is not an operation with rate > 0")
                    plan.rates[operation] = float(rate)
                if spec.get("expire_tokens"):
                    plan.tokens = {t: (who, 0.0) for t, (who, _) in plan.tokens.items()}
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(plan.to_json())
