"""The SP-API connector against the sandbox over real HTTP: Login with Amazon tokens
(expiry, refresh, a 403 retried once), rate limits (429 honoured, token-bucket
spacing measured on the requests), complete paging without duplicates, the
price lists' identifiers searched, a malformed credential refused, and no secret
anywhere it could leak."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.credentials import credentials_app
from connectors.http_client import CredentialError, RequestPolicy
from connectors.ingest import run_source
from connectors.landing import read_quarantine, read_table
from connectors.sources.sp_api_auth import USAGE_PLANS, TokenBucket, forget_tokens
from connectors.sources.sp_api_inputs import price_list_identifiers
from connectors.state import read_load_log
from core.settings import Settings, get_settings
from credentials import generate_master_key, list_credentials
from sandbox.generator import generate_sources
from sandbox.generator.sp_api import CATEGORIES, write_price_lists
from sandbox.server.running import LWA_TOKEN_ENV, RunningSandbox, start_sandbox

TENANTS = ("acme", "globex")
ITEMS = 60
FAST = RequestPolicy(
    connect_timeout=2, read_timeout=5, backoff_base=0.001, backoff_max=0.01, retry_after_max=2
)
EVERY_CATEGORY = ", ".join(c.word for c in CATEGORIES)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    data = tmp_path_factory.mktemp("sp_api") / "data"
    generate_sources(
        data, tenants=TENANTS, scale=0.01, seed=7, counts={"sp_api.catalog_items": ITEMS}
    )
    with start_sandbox(data) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _fresh(sandbox: RunningSandbox) -> Iterator[None]:
    """Each test starts with no faults, no cached token and the sandbox's default plan."""
    forget_tokens()
    sandbox.clear_faults()
    plan(sandbox, token_lifetime=3600, rates=dict.fromkeys(USAGE_PLANS, 50))
    sandbox.reset_log()
    yield
    sandbox.clear_faults()


def plan(sb: RunningSandbox, **spec: object) -> dict:
    response = httpx.post(f"{sb.url}/_sandbox/sp_api", json=spec)
    assert response.status_code == 200, response.text
    return response.json()


def home(tmp_path: Path, sb: RunningSandbox) -> Settings:
    return get_settings(
        home=tmp_path / "bizos", database_url=None, lwa_token_url=sb.env()[LWA_TOKEN_ENV]
    )


@pytest.fixture
def settings_sp(tmp_path: Path, sandbox: RunningSandbox) -> Settings:
    """A private BIZOS_HOME whose Login with Amazon endpoint is the sandbox's."""
    return home(tmp_path, sandbox)


def load(settings: Settings, sb: RunningSandbox, tenant: str = "acme", **kw):
    kw.setdefault("policy", FAST)
    return run_source(
        settings,
        tenant_id=tenant,
        source="sp_api",
        secret=sb.credential(tenant, "sp_api")["secret"],
        base_url=sb.base_url("sp_api"),
        **kw,
    )


def generated(sb: RunningSandbox, tenant: str) -> dict[str, dict]:
    path = sb.data_dir / tenant / "sp_api" / "catalog_items.parquet"
    rows = pq.read_table(path, columns=["id", "payload"]).to_pylist()
    return {r["id"]: json.loads(r["payload"]) for r in rows}


def lake(settings: Settings, table: str, tenant: str = "acme") -> list[dict]:
    landed = read_table(settings, "sp_api", table, tenant)
    return [] if landed is None else landed.to_pylist()


# -- paging and re-runs ------------------------------------------------------------------


def test_every_item_lands_once_with_its_offers_and_fees_and_a_rerun_adds_nothing(
    settings_sp: Settings, sandbox: RunningSandbox
) -> None:
    # Pages of 5: each phrase's results span several.
    results = load(settings_sp, sandbox, options={"keywords": EVERY_CATEGORY}, page_size=5)
    assert [r.table for r in results] == ["catalog_items", "item_offers", "fee_estimates"]
    assert all(r.status == "success" and r.rows_quarantined == 0 for r in results)
    items = generated(sandbox, "acme")
    catalog = lake(settings_sp, "catalog_items")
    asins = [r["asin"] for r in catalog]
    assert sorted(asins) == sorted(items), "paging lost or duplicated items"
    # Searches were paged by the API's nextToken, one marketplace each.
    searches = sandbox.requests("sp_api", "/catalog/2022-04-01/items")
    assert sum("pageToken=" in r.query for r in searches) >= len(CATEGORIES)
    assert all("pageSize=5" in r.query and "marketplaceIds=ATVPDKIKX0DER" in r.query
               for r in searches)  # fmt: skip

    # The documented units become ours; the first display-group rank is the category.
    row = next(r for r in catalog if r["sales_rank"] is not None)
    item = items[row["asin"]]
    dims = item["dimensions"][0]["item"]
    assert row["item_weight_kg"] == pytest.approx(dims["weight"]["value"] * 0.45359237, abs=1e-3)
    assert row["length_cm"] == pytest.approx(dims["length"]["value"] * 2.54, abs=1e-3)
    group_rank = item["salesRanks"][0]["displayGroupRanks"][0]
    assert (row["category"], row["sales_rank"]) == (
        group_rank["websiteDisplayGroup"],
        group_rank["rank"],
    )
    assert row["list_price"] == f"{item['attributes']['list_price'][0]['value']:.2f}"

    offers = lake(settings_sp, "item_offers")
    fees = lake(settings_sp, "fee_estimates")
    assert sorted(r["asin"] for r in offers) == sorted(items)
    assert sorted(r["asin"] for r in fees) == sorted(items)
    for fee in fees:
        # The structure kept makes a what-if price need no new call.
        price, rate = float(fee["price"]), float(fee["referral_rate"])
        assert price * rate + float(fee["fixed_fees"]) == pytest.approx(
            float(fee["total_fees"]), abs=0.011
        )
    by_asin = {o["asin"]: o for o in offers}
    for fee in fees:
        offer = by_asin[fee["asin"]]
        expected = offer["buy_box_price"] or offer["lowest_price"]
        if expected:
            assert fee["price"] == expected

    # Same day again: the catalog is re-read and replaces itself; offers and fees,
    # already landed today, are not asked for again.
    sandbox.reset_log()
    again = load(settings_sp, sandbox, options={"keywords": EVERY_CATEGORY})
    assert [r.rows_added for r in again] == [0, 0, 0]
    assert sandbox.count("sp_api", "/products/") == 0
    assert len(lake(settings_sp, "catalog_items")) == len(items)
    first_seen = {r["asin"]: r["first_seen_at"] for r in catalog}
    assert {r["asin"]: r["first_seen_at"] for r in lake(settings_sp, "catalog_items")} == (
        first_seen
    )

    # Without the run's keywords most items match no search any more: known items
    # are refreshed one getCatalogItem each, so their offers and fees stay of today.
    sandbox.reset_log()
    (result,) = load(settings_sp, sandbox, tables=["catalog_items"])
    assert result.status == "success" and result.rows_added == 0
    refreshed = lake(settings_sp, "catalog_items")
    by_search = {r["asin"] for r in refreshed if r["found_by"].startswith("keyword:")}
    assert 0 < len(by_search) < len(items)
    assert {r["found_by"] for r in refreshed if r["asin"] not in by_search} == {"known"}
    single = sandbox.requests("sp_api", "/catalog/2022-04-01/items/")
    assert len(single) == len(items) - len(by_search)
    assert all(r["updated_at"] > catalog[0]["updated_at"] for r in refreshed)


def test_price_list_identifiers_are_searched_twenty_at_a_time(
    settings_sp: Settings, sandbox: RunningSandbox
) -> None:
    lists = write_price_lists(settings_sp.inbox_dir, sandbox.data_dir, "globex")
    (result,) = load(settings_sp, sandbox, "globex", tables=["catalog_items"])
    assert result.status == "success"
    items = generated(sandbox, "globex")
    wanted: set[str] = set()
    for row in lists.quoted:
        for asin_of, item in items.items():
            ids = {i["identifier"] for i in item["identifiers"][0]["identifiers"]}
            if row["asin"] == asin_of or row["upc"] in ids or row["ean"] in ids:
                wanted.add(asin_of)
    landed = {r["asin"]: r for r in lake(settings_sp, "catalog_items", "globex")}
    assert wanted and wanted <= set(landed)
    assert set(lists.high_risk_only) <= set(landed)
    # Items outside the default keywords (config/sourcing/default.yaml) came only
    # from the identifiers.
    by_identifier = {a for a, r in landed.items() if not r["found_by"].startswith("keyword:")}
    assert by_identifier and by_identifier <= wanted
    searches = sandbox.requests("sp_api", "/catalog/2022-04-01/items")
    by_ids = [r for r in searches if "identifiers=" in r.query]
    assert by_ids
    for request in by_ids:
        query = httpx.QueryParams(request.query)
        assert query["identifiersType"] in {"UPC", "EAN", "ASIN"}
        assert 1 <= len(query["identifiers"].split(",")) <= 20
        assert "keywords" not in query


# -- tokens ----------------------------------------------------------------------------


def test_tokens_are_cached_renewed_on_expiry_and_a_403_is_retried_once(
    settings_sp: Settings, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    load(settings_sp, sandbox, tables=["catalog_items"])
    load(settings_sp, sandbox, tables=["catalog_items"])
    assert sandbox.count("sp_api", "/auth/o2/token") == 1, "the token was not cached"

    # A token that lives one second is renewed before it is used past its life.
    plan(sandbox, token_lifetime=1)
    forget_tokens()
    sandbox.reset_log()
    load(settings_sp, sandbox, tables=["catalog_items"])
    time.sleep(1.0)
    load(settings_sp, sandbox, tables=["catalog_items"])
    assert sandbox.count("sp_api", "/auth/o2/token") == 2
    assert all(r.status != 403 for r in sandbox.requests("sp_api"))

    # The service refuses tokens it issued (as if its clock had passed them): one
    # 403 Unauthorized, one refresh, the request again, and the load goes on.
    plan(sandbox, token_lifetime=3600)
    forget_tokens()
    load(settings_sp, sandbox, tables=["catalog_items"])
    plan(sandbox, expire_tokens=True)
    sandbox.reset_log()
    (result,) = load(settings_sp, sandbox, tables=["catalog_items"])
    assert result.status == "success"
    statuses = [r.status for r in sandbox.requests("sp_api", "/catalog/")]
    assert statuses[0] == 403 and statuses[1:] and set(statuses[1:]) == {200}
    assert sandbox.count("sp_api", "/auth/o2/token") == 1

    # A refresh token Login with Amazon refuses is the tenant's to fix, and says so.
    forget_tokens()
    entry = sandbox.credential("acme", "sp_api")
    revoked = json.dumps({**json.loads(entry["secret"]), "refresh_token": "Atzr|revoked-0000000"})
    with pytest.raises(CredentialError) as err:
        run_source(
            settings_sp,
            tenant_id="acme",
            source="sp_api",
            secret=revoked,
            base_url=sandbox.base_url("sp_api"),
            policy=FAST,
        )
    said = "".join(traceback.format_exception(err.value))
    assert "Login with Amazon" in str(err.value) and "'acme'" in str(err.value)
    assert "bizos credentials set --tenant acme --source sp_api" in str(err.value)
    assert "Atzr|revoked" not in said and entry["client_secret"] not in said


# -- rate limits -----------------------------------------------------------------------


def test_the_documented_usage_plans_space_calls() -> None:
    """The buckets at Amazon's default rates, on a clock that only moves when they wait."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def waits(operation: str, calls: int) -> list[float]:
        plan_ = USAGE_PLANS[operation]
        bucket = TokenBucket(plan_.rate, plan_.burst, clock=lambda: now[0], sleep=sleep)
        return [round(bucket.take(), 6) for _ in range(calls)]

    assert waits("getItemOffers", 3) == [0.0, 2.0, 2.0]  # 0.5 per second, burst 1
    assert waits("searchCatalogItems", 4) == [0.0, 0.0, 0.5, 0.5]  # 2 per second, burst 2
    assert waits("getMyFeesEstimateForASIN", 4) == [0.0, 0.0, 1.0, 1.0]  # 1 per second, burst 2


def test_throttled_calls_wait_for_retry_after_and_the_bucket_spaces_calls(
    settings_sp: Settings, sandbox: RunningSandbox
) -> None:
    load(settings_sp, sandbox, tables=["catalog_items"], options={"keywords": EVERY_CATEGORY})
    # The account's usage plan, as x-amzn-RateLimit-Limit states it: 20 offers a second.
    plan(sandbox, rates={"getItemOffers": 20})
    sandbox.inject("sp_api", "429", path="/products/pricing", count=1, after=4, retry_after=0.3)
    sandbox.reset_log()
    (result,) = load(settings_sp, sandbox, tables=["item_offers"])
    assert result.status == "success" and result.rows_added == len(
        lake(settings_sp, "catalog_items")
    )
    calls = sandbox.requests("sp_api", "/products/pricing")
    statuses = [c.status for c in calls]
    assert statuses.count(429) == 1 and statuses[-1] == 200
    throttled = statuses.index(429)
    assert calls[throttled + 1].at - calls[throttled].at >= 0.3 * 0.95, "Retry-After ignored"
    # Once the first answer states the plan, each call waits its 1/20 s (burst 1).
    # Measured over the run of calls after the retry (the sandbox stamps a request
    # when it has answered, so one gap alone carries the server's jitter): the
    # retry was the HTTP client's, and the bucket refilled while it waited.
    paced = calls[throttled + 2 :]
    assert len(paced) >= 20
    span = paced[-1].at - paced[0].at
    assert span >= (len(paced) - 1) * 0.05 * 0.9, f"{len(paced)} calls in {span:.2f}s"


# -- credentials and secrets -----------------------------------------------------------


def test_a_malformed_credential_is_refused_naming_the_field_and_nothing_is_stored(
    bizos_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIZOS_HOME", str(bizos_home))
    monkeypatch.delenv("BIZOS_DATABASE_URL", raising=False)
    monkeypatch.setenv("BIZOS_MASTER_KEY", generate_master_key().encoded())
    runner = CliRunner()
    good = {"client_id": "amzn1.application-oa2-client.x", "client_secret": "s3cr3t-value-1234",
            "refresh_token": "Atzr|refresh-value-5678"}  # fmt: skip
    for bad, named in (
        ({k: v for k, v in good.items() if k != "refresh_token"}, "refresh_token"),
        ({**good, "client_secret": ""}, "client_secret"),
        ("not json at all", "JSON object"),
    ):
        text = bad if isinstance(bad, str) else json.dumps(bad)
        result = runner.invoke(
            credentials_app, ["set", "--tenant", "acme", "--source", "sp_api"], input=text
        )
        assert result.exit_code == 2, result.output
        assert named in result.stderr and "nothing was stored" in result.stderr
        assert "s3cr3t-value-1234" not in result.output + result.stderr
        assert "Atzr|refresh-value-5678" not in result.output + result.stderr
    assert list_credentials(get_settings()) == []
    result = runner.invoke(
        credentials_app,
        ["set", "--tenant", "acme", "--source", "sp_api"],
        input=json.dumps(good),
    )
    assert result.exit_code == 0, result.output
    assert [c.source for c in list_credentials(get_settings())] == ["sp_api"]


def test_no_secret_in_logs_errors_load_log_or_lake(
    settings_sp: Settings,
    sandbox: RunningSandbox,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.inject("sp_api", "429", count=2, retry_after=0)
    sandbox.inject("sp_api", "500", count=1, after=3)
    sandbox.inject("sp_api", "malformed", count=1, after=6)
    load(settings_sp, sandbox, tables=["catalog_items"])
    plan(sandbox, expire_tokens=True)  # a 403 echoing nothing, then a refresh
    load(settings_sp, sandbox)
    sandbox.inject("sp_api", "503", count=0, retry_after=0)
    with pytest.raises(Exception) as err:
        load(settings_sp, sandbox, full_refresh=True,
             policy=RequestPolicy(max_attempts=2, backoff_base=0))  # fmt: skip
    entry = sandbox.credential("acme", "sp_api")
    tokens = list(sandbox.app.api.state.sp_api.tokens)
    assert len(tokens) >= 2
    secrets = [entry["client_secret"], entry["refresh_token"], *tokens]
    out = capsys.readouterr()
    said = caplog.text + out.out + out.err + "".join(traceback.format_exception(err.value))
    stored = json.dumps([r.__dict__ for r in read_load_log(settings_sp)], default=str)
    landed = "".join(
        json.dumps(t.to_pylist(), default=str)
        for table in ("catalog_items", "item_offers", "fee_estimates")
        for t in (
            read_table(settings_sp, "sp_api", table, "acme"),
            read_quarantine(settings_sp, "sp_api", table, "acme"),
        )
        if t is not None
    )
    assert "try 2 of" in caplog.text and landed
    for secret in secrets:
        assert secret not in said and secret not in stored and secret not in landed


def test_identifiers_come_from_the_landed_price_lists_else_the_inbox(settings: Settings) -> None:
    inbox = settings.tenant_inbox("acme") / "price_lists"
    inbox.mkdir(parents=True)
    (inbox / "quotes.csv").write_text(
        " Supplier ID ,UPC,EAN,ASIN,Unit Cost\nSUP-001,012345678905,,,1.00\n"
        "SUP-001,not-a-upc,4006381333931,b00abc1234,2.00\n"
    )
    assert price_list_identifiers(settings, "acme") == {
        "UPC": ["012345678905"],
        "EAN": ["4006381333931"],
        "ASIN": ["B00ABC1234"],
    }
    # Once the price-list loader has landed the rows (only those that passed its
    # checks), those are what is searched.
    landed = settings.lake_dir / "price_lists" / "items" / "tenant=acme" / "items.parquet"
    landed.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {"upc": ["036000291452", None], "ean": [None, None], "asin": [None, "B0CDE56789"]}
        ),
        landed,
    )
    assert price_list_identifiers(settings, "acme") == {
        "UPC": ["036000291452"],
        "ASIN": ["B0CDE56789"],
    }
    assert price_list_identifiers(settings, "globex") == {}
