"""The sourcing routes over both serving stores: ranking, filters, keyset paging,
ETags, 404s and tenants apart (on Postgres through the API's own login role, so
row-level security is what keeps them apart). Rows are published through the one
publish path; the mart that produces them is tested in test_sourcing_marts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.contracts.sourcing_opportunities import SOURCING_OPPORTUNITIES
from core.settings import Settings, get_settings
from serving.api_role import create_api_role
from serving.keys import create_key
from serving.main import create_app
from serving.publish import publish_table

API_ROLE = "bizos_api_src_" + os.environ.get("PYTEST_XDIST_WORKER", "main")

# (asin, score, supplier points, tier, category, margin %)
T1_ROWS = [
    ("B0000000A1", 90, 0, "low", "kitchen_display_on_website", 35.0),
    ("B0000000A2", 65, 0, "low", "home_garden_display_on_website", 22.5),
    ("B0000000A3", 65, -25, "high", "home_garden_display_on_website", 40.0),
    ("B0000000A4", 40, -10, "medium", "kitchen_display_on_website", 12.0),
    ("B0000000A5", 0, 0, "low", "toy_display_on_website", -5.0),
    ("B0000000A6", 0, -40, "critical", "toy_display_on_website", -5.0),
    ("B0000000A7", None, -50, None, "toy_display_on_website", None),
]
RANKED = ["B0000000A1", "B0000000A2", "B0000000A3", "B0000000A4", "B0000000A5",
          "B0000000A6", "B0000000A7"]  # fmt: skip


def opportunity_row(
    tenant_id: str,
    asin: str,
    score: int | None,
    supplier_points: int,
    tier: str | None,
    category: str,
    margin_pct: float | None,
) -> dict[str, object]:
    """A published opportunity as mart_sourcing_opportunities makes one."""
    reasons = [
        {"code": "strong_demand", "label": "About 1499 sold a month", "points": 30,
         "evidence": f"catalog_items:{asin} sales_rank 1000 in {category}"},
        {"code": f"supplier_{tier}_risk" if tier else "no_usable_supplier",
         "label": "supplier", "points": supplier_points,
         "evidence": "supplier:S-1 (pending; country_risk:+40)" if tier else None},
    ]  # fmt: skip
    return {
        "tenant_id": tenant_id, "asin": asin, "marketplace_id": "ATVPDKIKX0DER",
        "title": f"Item {asin}", "brand": "Acme", "category": category, "currency": "USD",
        "score": score, "grade": None if score is None else "A" if score >= 75 else "B",
        "reasons": "|".join(f"{r['code']}:{r['points']:+d}" for r in reasons),
        "score_model": "sourcing_rules_v1",
        "score_status": "unknown" if score is None else "scored",
        "demand_score": 30, "margin_score": None if margin_pct is None else 25,
        "competition_score": 20, "stability_score": 15, "supplier_score": supplier_points,
        "confidence": "high", "price": 20.0, "price_basis": "buy_box", "fees_per_unit": 8.0,
        "referral_rate": 0.15, "fixed_fees": 5.0,
        "landed_cost": None if tier is None else 6.15,
        "margin_per_unit": None if margin_pct is None else 5.85, "margin_pct": margin_pct,
        "roi_pct": None if margin_pct is None else 95.12, "sales_rank": 1000,
        "est_monthly_units": 1499, "est_monthly_units_low": 750,
        "est_monthly_units_high": 2699, "est_monthly_revenue": 29980.0,
        "est_monthly_profit": 2923.0, "offer_count": 2, "fba_offer_count": 1,
        "buy_box_share": 0.3333, "price_cv": 0.0, "offer_days": 10, "supplier_count": 1,
        "supplier_id": "S-1" if tier else None, "supplier_name": "Harbour" if tier else None,
        "supplier_sku": "SK-1" if tier else None, "supplier_tier": tier,
        "supplier_review_status": ("pending" if tier in ("high", "critical") else "approved")
        if tier else None,
        "review_required": tier in ("high", "critical", None),
        "match_rule": "asin" if tier else None, "unit_cost": 5.0 if tier else None,
        "cost_currency": "USD" if tier else None, "moq": 100 if tier else None,
        "lead_time_days": 14 if tier else None, "reasons_json": json.dumps(reasons),
        "model_version": "sourcing_rules_v1", "config_version": "v1-test",
        "scored_at": datetime(2026, 6, 1, tzinfo=UTC),
    }  # fmt: skip


def publish_both(settings: Settings) -> None:
    t1 = [opportunity_row("t1", *r) for r in T1_ROWS]
    t2 = [opportunity_row("t2", "B0000000Z9", 99, 0, "low", "kitchen_display_on_website", 50.0)]
    for tenant, rows in (("t1", t1), ("t2", t2)):
        table = pa.Table.from_pylist(rows, schema=SOURCING_OPPORTUNITIES.schema)
        publish_table(settings, SOURCING_OPPORTUNITIES, tenant, table)


@pytest.fixture(params=["duckdb", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[TestClient, Settings]]:
    if request.param == "duckdb":
        settings = get_settings(home=tmp_path, database_url=None, api_rate_limit=100_000)
        publish_both(settings)
        with TestClient(create_app(settings)) as client:
            yield client, settings
        return
    pg_settings: Settings = request.getfixturevalue("pg_settings")
    pg_settings = pg_settings.model_copy(update={"api_rate_limit": 100_000})
    publish_both(pg_settings)
    url = create_api_role(pg_settings, API_ROLE)
    api_settings = pg_settings.model_copy(update={"api_database_url": SecretStr(url)})
    with TestClient(create_app(api_settings)) as client:
        yield client, pg_settings


def get(client: TestClient, key: str, path: str, **params: object):
    return client.get(path, params=params, headers={"X-API-Key": key})


def test_ranked_best_first_and_paged_to_the_end(api):
    client, settings = api
    key = create_key(settings, "t1")
    page = get(client, key, "/v1/sourcing/opportunities")
    assert page.status_code == 200, page.text
    # equal scores: the safer supplier first (A2 before A3, A5 before A6); unknown last
    assert [i["asin"] for i in page.json()["items"]] == RANKED
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = get(client, key, "/v1/sourcing/opportunities", **params).json()
        seen += [i["asin"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == RANKED
    risky = page.json()["items"][2]
    assert risky["supplier"]["tier"] == "high" and risky["review_required"] is True
    assert risky["reasons"][1]["evidence"] == "supplier:S-1 (pending; country_risk:+40)"
    assert page.json()["items"][-1]["supplier"] is None


def test_filters_combine(api):
    client, settings = api
    key = create_key(settings, "t1")

    def asins(**params: object) -> list[str]:
        response = get(client, key, "/v1/sourcing/opportunities", **params)
        assert response.status_code == 200, response.text
        return [i["asin"] for i in response.json()["items"]]

    assert asins(min_score=65) == ["B0000000A1", "B0000000A2", "B0000000A3"]
    assert asins(category="toy_display_on_website") == RANKED[4:]
    assert asins(min_margin=22.5) == ["B0000000A1", "B0000000A2", "B0000000A3"]
    assert asins(supplier_tier="low", min_score=1) == ["B0000000A1", "B0000000A2"]
    assert asins(supplier_tier="high", category="kitchen_display_on_website") == []
    paged = get(client, key, "/v1/sourcing/opportunities", min_margin=0, limit=1).json()
    assert paged["items"][0]["asin"] == "B0000000A1"
    rest = get(
        client, key, "/v1/sourcing/opportunities", min_margin=0, cursor=paged["next_cursor"]
    ).json()
    assert [i["asin"] for i in rest["items"]] == ["B0000000A2", "B0000000A3", "B0000000A4"]


def test_one_item_etag_404_and_tenants_apart(api):
    client, settings = api
    t1, t2 = create_key(settings, "t1"), create_key(settings, "t2")
    one = get(client, t1, "/v1/sourcing/opportunities/B0000000A3")
    assert one.status_code == 200
    assert (one.json()["score"], one.json()["supplier"]["supplier_id"]) == (65, "S-1")
    again = client.get(
        "/v1/sourcing/opportunities/B0000000A3",
        headers={"X-API-Key": t1, "If-None-Match": one.headers["ETag"]},
    )
    assert again.status_code == 304
    # lower case is the same ASIN; another tenant's item is a plain 404
    assert get(client, t1, "/v1/sourcing/opportunities/b0000000a3").status_code == 200
    for path in ("/v1/sourcing/opportunities/B0000000Z9", "/v1/sourcing/opportunities/B00NOTHERE"):
        missing = get(client, t1, path)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    assert [i["asin"] for i in get(client, t2, "/v1/sourcing/opportunities").json()["items"]] == [
        "B0000000Z9"
    ]
    assert get(client, t2, "/v1/sourcing/opportunities/B0000000A1").status_code == 404
    # a tenant with no opportunities (yet) gets an empty page, not an error
    empty = get(client, create_key(settings, "t3"), "/v1/sourcing/opportunities", min_score=1)
    assert (empty.status_code, empty.json()) == (200, {"items": [], "next_cursor": None})


def test_bad_cursor_and_parameters_are_problems(api):
    client, settings = api
    key = create_key(settings, "t1")
    for params in ({"cursor": "bm90LWpzb24"}, {"cursor": "WzEwMSwwLCJ4Il0"}):
        bad = get(client, key, "/v1/sourcing/opportunities", **params)
        assert bad.status_code == 400 and bad.json()["detail"] == "invalid cursor"
    assert get(client, key, "/v1/sourcing/opportunities", supplier_tier="bogus").status_code == 422
    assert get(client, key, "/v1/sourcing/opportunities", min_score=101).status_code == 422
    assert get(client, key, "/v1/sourcing/opportunities/not-an-asin!").status_code == 422
    no_scope = create_key(settings, "t1", scopes=["reviews:write"])
    assert get(client, no_scope, "/v1/sourcing/opportunities").status_code == 403
