"""The sandbox over real HTTP: every endpoint's shape and paging, auth, tenant isolation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from sandbox.generator import TABLES, GroundTruth, generate_sources, id_checksum, table_path
from sandbox.server import RunningSandbox, start_sandbox

A, B = "acme-robotics", "bluebird-retail"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sandbox")
    generate_sources(out, tenants=[A, B], scale=0.1, seed=7)
    return out


@pytest.fixture(scope="module")
def sandbox(data_dir) -> Iterator[RunningSandbox]:
    with start_sandbox(data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def truth(sandbox) -> GroundTruth:
    return sandbox.ground_truth


def client(sb: RunningSandbox, source: str, tenant: str | None = A, **kw) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sb.tenant_token(tenant, source)}"} if tenant else {}
    return httpx.Client(base_url=sb.base_url(source), headers=headers, timeout=10, **kw)


def assert_matches_truth(ids: list[str], truth: GroundTruth, tenant: str, table: str) -> None:
    tt = truth.table(tenant, table)
    assert len(ids) == len(set(ids)), f"{table}: duplicates"
    assert len(ids) == tt.count, table
    assert id_checksum(ids) == tt.id_checksum, table


def stored(data_dir: Path, tenant: str, source: str, table: str, where: str = "true") -> list:
    path = table_path(data_dir, tenant, source, table)
    return duckdb.connect().execute(f"SELECT * FROM '{path}' WHERE {where} ORDER BY seq").fetchall()


# -- Stripe ---------------------------------------------------------------------------


def walk_stripe(c: httpx.Client, resource: str, **params) -> list[dict]:
    out: list[dict] = []
    params = {"limit": 37, **params}
    while True:
        r = c.get(f"/v1/{resource}", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "list" and body["url"] == f"/v1/{resource}"
        out += body["data"]
        if not body["has_more"]:
            return out
        params["starting_after"] = body["data"][-1]["id"]


@pytest.mark.parametrize("resource", TABLES["stripe"])
def test_stripe_lists_walk_every_object_once_newest_first(sandbox, truth, resource):
    with client(sandbox, "stripe") as c:
        objects = walk_stripe(c, resource)
    assert_matches_truth([o["id"] for o in objects], truth, A, f"stripe.{resource}")
    keys = [(o["created"], o["id"]) for o in objects]
    assert keys == sorted(keys, reverse=True)
    prefix = {
        "customers": "cus_",
        "charges": "ch_",
        "invoices": "in_",
        "subscriptions": "sub_",
        "balance_transactions": "txn_",
    }[resource]
    assert all(o["id"].startswith(prefix) and not o.get("livemode") for o in objects)


def test_stripe_created_filters_and_ending_before(sandbox, data_dir):
    rows = stored(data_dir, A, "stripe", "charges")
    mid = rows[len(rows) // 2][1]
    with client(sandbox, "stripe") as c:
        newer = walk_stripe(c, "charges", **{"created[gte]": mid})
        older = walk_stripe(c, "charges", **{"created[lt]": mid})
        exact = c.get("/v1/charges", params={"created": mid, "limit": 100}).json()["data"]
        default = c.get("/v1/charges").json()
        # Walk back up from the oldest charge with ending_before.
        oldest = older[-1]["id"]
        back: list[dict] = []
        cursor = oldest
        while True:
            page = c.get("/v1/charges", params={"ending_before": cursor, "limit": 50}).json()
            back = page["data"] + back
            if not page["has_more"]:
                break
            cursor = page["data"][0]["id"]
    assert {o["id"] for o in newer} == {r[0] for r in rows if r[1] >= mid}
    assert {o["id"] for o in older} == {r[0] for r in rows if r[1] < mid}
    assert {o["id"] for o in exact} == {r[0] for r in rows if r[1] == mid}
    assert len(default["data"]) == 10 and default["has_more"] is True
    assert [o["id"] for o in back] == [r[0] for r in reversed(rows)][:-1]


def test_stripe_rejects_bad_keys_with_its_error_shape(sandbox):
    url = sandbox.base_url("stripe") + "/v1/charges"
    key = sandbox.tenant_token(A, "stripe")
    wrong = key[:-4] + "abcd" if not key.endswith("abcd") else key[:-4] + "wxyz"
    r = httpx.get(url, headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    masked = err["message"].removeprefix("Invalid API Key provided: ")
    assert masked.startswith("sk_test_") and masked.endswith(wrong[-4:])
    assert set(masked[len("sk_test_") : -4]) == {"*"} and wrong not in r.text
    r = httpx.get(url)
    assert r.status_code == 401 and "did not provide an API key" in r.json()["error"]["message"]
    expired = sandbox.tenant_token(A, "stripe", expired=True)
    r = httpx.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_expired"
    # Stripe also takes the key as the HTTP Basic username.
    r = httpx.get(url, auth=(key, ""))
    assert r.status_code == 200 and r.json()["data"]


def test_stripe_parameter_errors(sandbox):
    with client(sandbox, "stripe") as c:
        for params, param in (
            ({"limit": 101}, "limit"),
            ({"limit": "x"}, "limit"),
            ({"starting_after": "ch_nope"}, "starting_after"),
            ({"customer": "cus_1"}, "customer"),
            ({"bogus": "1"}, "bogus"),
        ):
            r = c.get("/v1/charges", params=params)
            assert r.status_code == 400, params
            assert r.json()["error"]["param"] == param
        r = c.get("/v1/charges", params={"starting_after": "a", "ending_before": "b"})
        assert r.status_code == 400
        assert c.get("/v1/refunds").status_code == 404


def test_stripe_key_is_the_tenant(sandbox, truth):
    with client(sandbox, "stripe", A) as ca, client(sandbox, "stripe", B) as cb:
        a_ids = {o["id"] for o in walk_stripe(ca, "charges")}
        b_ids = {o["id"] for o in walk_stripe(cb, "charges")}
        assert a_ids and b_ids and not a_ids & b_ids
        # A cursor from tenant B's data is unknown to tenant A.
        r = ca.get("/v1/charges", params={"starting_after": next(iter(b_ids))})
        assert r.status_code == 400 and r.json()["error"]["code"] == "resource_missing"
    assert id_checksum(b_ids) == truth.table(B, "stripe.charges").id_checksum


# -- CRM ------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", TABLES["crm_api"])
def test_crm_pages_walk_every_record_once(sandbox, truth, resource):
    records: list[dict] = []
    with client(sandbox, "crm_api") as c:
        page = 1
        while True:
            r = c.get(f"/api/v1/{resource}", params={"page": page, "per_page": 13})
            assert r.status_code == 200, r.text
            body = r.json()
            meta = body["meta"]
            assert meta["page"] == page and meta["per_page"] == 13
            assert meta["total_pages"] == -(-meta["total"] // 13)
            records += body["data"]
            if page >= meta["total_pages"]:
                break
            page += 1
    assert_matches_truth([x["id"] for x in records], truth, A, f"crm_api.{resource}")
    keys = [(x["updated_at"], x["id"]) for x in records]
    assert keys == sorted(keys)


def test_crm_updated_since_and_auth(sandbox, data_dir):
    rows = stored(data_dir, A, "crm_api", "activities")
    since = rows[len(rows) // 3][1]
    iso = rows[len(rows) // 3][4] and json.loads(rows[len(rows) // 3][4])["updated_at"]
    with client(sandbox, "crm_api") as c:
        body = c.get("/api/v1/activities", params={"updated_since": iso, "per_page": 100}).json()
        assert body["meta"]["total"] == sum(1 for r in rows if r[1] >= since)
        assert all(x["updated_at"] >= iso for x in body["data"])
        assert c.get("/api/v1/leads", params={"per_page": 101}).status_code == 422
    r = httpx.get(
        sandbox.base_url("crm_api") + "/api/v1/leads", headers={"Authorization": "Bearer no"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    expired = sandbox.tenant_token(A, "crm_api", expired=True)
    r = httpx.get(
        sandbox.base_url("crm_api") + "/api/v1/leads",
        headers={"Authorization": f"Bearer {expired}"},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    with client(sandbox, "crm_api", B) as c:
        ids = {x["id"] for x in c.get("/api/v1/leads", params={"per_page": 100}).json()["data"]}
    assert ids and not {i for i in ids if i.startswith("ACM-")}


# -- GA4 ------------------------------------------------------------------------------


def run_report(sb: RunningSandbox, body: dict, tenant: str = A, token: str | None = None):
    prop = sb.credential(tenant, "ga4")["property_id"]
    token = token or sb.tenant_token(tenant, "ga4")
    return httpx.post(
        f"{sb.base_url('ga4')}/v1beta/properties/{prop}:runReport",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


ALL_TIME = [{"startDate": "2025-01-01", "endDate": "today"}]
METRICS = [{"name": m} for m in ("sessions", "totalUsers", "screenPageViews", "conversions")]


def test_ga4_run_report_pages_finest_grain_rows_to_the_truth(sandbox, truth):
    dims = [{"name": d} for d in ("date", "pagePath", "sessionSourceMedium", "clientId", "userId")]
    rows, offset = [], 0
    while True:
        r = run_report(
            sandbox,
            {
                "dateRanges": ALL_TIME,
                "dimensions": dims,
                "metrics": METRICS,
                "limit": 250,
                "offset": offset,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "analyticsData#runReport"
        assert [h["name"] for h in body["dimensionHeaders"]] == [d["name"] for d in dims]
        assert body["metricHeaders"][0] == {"name": "sessions", "type": "TYPE_INTEGER"}
        assert body["metadata"]["currencyCode"] and body["metadata"]["timeZone"]
        rows += body["rows"]
        offset += 250
        if offset >= body["rowCount"]:
            break
    ids = ["|".join(v["value"] for v in row["dimensionValues"][:4]) for row in rows]
    assert_matches_truth(ids, truth, A, "ga4.report_rows")
    totals = truth.tenants[A].facts["ga4_totals"]
    assert sum(int(row["metricValues"][0]["value"]) for row in rows) == totals["sessions"]
    assert sum(int(row["metricValues"][3]["value"]) for row in rows) == totals["conversions"]
    # Aggregated: totalUsers is distinct clients, not a sum.
    overall = run_report(sandbox, {"dateRanges": ALL_TIME, "metrics": METRICS}).json()
    values = [int(v["value"]) for v in overall["rows"][0]["metricValues"]]
    assert values == [
        totals["sessions"],
        totals["totalUsers"],
        totals["screenPageViews"],
        totals["conversions"],
    ]


def test_ga4_dates_ordering_and_empty_reports(sandbox):
    body = {
        "dateRanges": [{"startDate": "7daysAgo", "endDate": "yesterday"}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": "sessions"}],
        "orderBys": [{"dimension": {"dimensionName": "date"}, "desc": True}],
    }
    rows = run_report(sandbox, body).json()["rows"]
    dates = [r["dimensionValues"][0]["value"] for r in rows]
    assert dates == sorted(dates, reverse=True) and len(dates) == 7
    assert dates[0] == "20261031"  # yesterday, for data generated as of 2026-11-01
    empty = run_report(
        sandbox, {**body, "dateRanges": [{"startDate": "2020-01-01", "endDate": "2020-01-02"}]}
    )
    assert empty.status_code == 200 and "rows" not in empty.json()
    assert "rowCount" not in empty.json()


def test_ga4_errors_are_googles(sandbox):
    r = run_report(sandbox, {"dateRanges": ALL_TIME, "dimensions": [{"name": "nope"}]})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = run_report(sandbox, {"dateRanges": ALL_TIME, "metrics": METRICS}, token="ya29.wrong")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    expired = sandbox.tenant_token(A, "ga4", expired=True)
    r = run_report(sandbox, {"dateRanges": ALL_TIME, "metrics": METRICS}, token=expired)
    assert r.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    # Tenant B's token on tenant A's property.
    r = run_report(
        sandbox, {"dateRanges": ALL_TIME, "metrics": METRICS}, token=sandbox.tenant_token(B, "ga4")
    )
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_ga4_service_account_token_exchange(sandbox):
    account = json.loads(sandbox.credential(A, "ga4")["service_account_json"])
    claims = {"iss": account["client_email"], "scope": "analytics.readonly"}

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    jwt = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"
    r = httpx.post(
        sandbox.base_url("ga4") + "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt},
    )
    assert r.status_code == 200
    assert r.json()["access_token"] == sandbox.tenant_token(A, "ga4")


# -- Saleor ---------------------------------------------------------------------------

CONNECTION = "totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } }"


def graphql(c: httpx.Client, query: str, variables: dict | None = None) -> dict:
    r = c.post("/graphql/", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(
    ("root", "table"),
    [("orders", "orders"), ("products", "products"), ("productVariants", "variants")],
)
def test_saleor_relay_paging_walks_every_node_once(sandbox, truth, root, table):
    query = (
        f"query Walk($first: Int!, $after: String) {{ {root}(first: $first, after: $after) "
        f"{{ {CONNECTION} }} }}"
    )
    ids, after = [], None
    with client(sandbox, "saleor") as c:
        while True:
            body = graphql(c, query, {"first": 23, "after": after})
            assert "errors" not in body, body
            conn = body["data"][root]
            ids += [e["node"]["id"] for e in conn["edges"]]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
    assert_matches_truth(ids, truth, A, f"saleor.{table}")
    assert conn["totalCount"] == len(ids)
    pks = [int(base64.b64decode(i).decode().split(":")[1]) for i in ids]
    assert pks == sorted(pks), "default order: primary key"


def test_saleor_nodes_filters_sorting_and_fragments(sandbox, data_dir):
    rows = stored(data_dir, A, "saleor", "orders")
    since_ts = rows[len(rows) // 2][1]
    since = json.loads(rows[len(rows) // 2][4])["updatedAt"]
    query = """
      query Since($since: DateTime) {
        recent: orders(first: 100, filter: {updatedAt: {gte: $since}},
                       sortBy: {field: LAST_MODIFIED_AT, direction: ASC}) {
          ...Conn
        }
      }
      fragment Conn on OrderCountableConnection {
        totalCount edges { node { id number created updatedAt total { gross { amount currency } }
                                  lines { productName quantity variant { id sku } unitPrice { gross { amount } } } } }
      }"""  # noqa: E501
    with client(sandbox, "saleor") as c:
        body = graphql(c, query, {"since": since})
    conn = body["data"]["recent"]
    expected = [r for r in rows if r[1] >= since_ts]
    assert conn["totalCount"] == len(expected)
    nodes = [e["node"] for e in conn["edges"]]
    assert [n["updatedAt"] for n in nodes] == sorted(n["updatedAt"] for n in nodes)
    order = nodes[0]
    assert base64.b64decode(order["id"]).decode() == f"Order:{order['number']}"
    assert order["total"]["gross"]["currency"] and order["lines"]
    line = order["lines"][0]
    assert line["variant"]["sku"] and line["quantity"] >= 1 and line["unitPrice"]["gross"]


def test_saleor_errors_are_graphql_errors(sandbox):
    with client(sandbox, "saleor") as c:
        body = graphql(c, "{ orders(first: 1) { edges { node { id } ")
        assert body["errors"][0]["message"].startswith("Syntax Error")
        assert "data" not in body
        body = graphql(c, "{ orders(first: 101) { totalCount } }")
        assert body["data"]["orders"] is None and "exceeds" in body["errors"][0]["message"]
        body = graphql(c, "{ orders { totalCount } }")
        assert "must provide a `first`" in body["errors"][0]["message"]
        body = graphql(c, "{ customers(first: 1) { totalCount } }")
        assert 'Cannot query field "customers"' in body["errors"][0]["message"]
        body = graphql(c, "query($first: Int!) { orders(first: $first) { totalCount } }")
        assert "was not provided" in body["errors"][0]["message"]
    with client(sandbox, "saleor", None) as anonymous:
        body = graphql(anonymous, "{ orders(first: 1) { totalCount } }")
        err = body["errors"][0]
        assert body["data"] == {"orders": None}
        assert err["extensions"]["exception"]["code"] == "PermissionDenied"
    with client(sandbox, "saleor", B) as cb, client(sandbox, "saleor", A) as ca:
        q = "{ orders(first: 100) { edges { node { id userEmail } } } }"
        a = {e["node"]["userEmail"] for e in graphql(ca, q)["data"]["orders"]["edges"]}
        b = {e["node"]["userEmail"] for e in graphql(cb, q)["data"]["orders"]["edges"]}
        assert a != b


# -- CMS forms and AI usage -----------------------------------------------------------


def test_cms_forms_cursor_walk_and_since(sandbox, truth, data_dir):
    items, cursor = [], None
    with client(sandbox, "cms_forms") as c:
        while True:
            params = {"limit": 17, **({"cursor": cursor} if cursor else {})}
            r = c.get("/api/submissions", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            items += body["results"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert_matches_truth([x["id"] for x in items], truth, A, "cms_forms.submissions")
        assert {x["form_type"] for x in items} <= {"contact", "demo_request", "newsletter"}
        rows = stored(data_dir, A, "cms_forms", "submissions")
        since = json.loads(rows[len(rows) // 2][4])["submitted_at"]
        r = c.get("/api/submissions", params={"since": since, "limit": 200})
        assert len(r.json()["results"]) == sum(
            1 for row in rows if row[1] >= rows[len(rows) // 2][1]
        )
        assert c.get("/api/submissions", params={"cursor": "garbage"}).status_code == 400
    with client(sandbox, "cms_forms", B) as cb:
        first_b = cb.get("/api/submissions", params={"limit": 1}).json()["next_cursor"]
    with client(sandbox, "cms_forms") as c:
        assert c.get("/api/submissions", params={"cursor": first_b}).status_code == 400
    r = httpx.get(sandbox.base_url("cms_forms") + "/api/submissions")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_ai_usage_token_walk_and_time_window(sandbox, truth, data_dir):
    rows = stored(data_dir, A, "ai_usage", "usage")
    lo, hi = rows[len(rows) // 4][1], rows[3 * len(rows) // 4][1]
    items, token = [], None
    with client(sandbox, "ai_usage") as c:
        while True:
            params = {"page_size": 101, **({"page_token": token} if token else {})}
            body = c.get("/v1/usage", params=params).json()
            items += body["data"]
            token = body["next_page_token"]
            if token is None:
                break
        window, token = [], None
        while True:
            params = {
                "start_time": lo,
                "end_time": hi,
                "page_size": 50,
                **({"page_token": token} if token else {}),
            }
            body = c.get("/v1/usage", params=params).json()
            window += body["data"]
            token = body["next_page_token"]
            if token is None:
                break
    assert_matches_truth([x["id"] for x in items], truth, A, "ai_usage.usage")
    assert [x["id"] for x in window] == [r[0] for r in rows if lo <= r[1] < hi]
    record = items[0]
    assert set(record) >= {
        "id",
        "timestamp",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "feature",
    }
    assert isinstance(record["cost_usd"], str) and "." in record["cost_usd"]
    r = httpx.get(sandbox.base_url("ai_usage") + "/v1/usage", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_env_and_health(sandbox):
    env = sandbox.env()
    assert env["BIZOS_STRIPE_BASE_URL"] == sandbox.url + "/stripe"
    assert set(env) == {f"BIZOS_{s.upper()}_BASE_URL" for s in TABLES} | {"BIZOS_LWA_TOKEN_URL"}
    assert env["BIZOS_LWA_TOKEN_URL"] == sandbox.url + "/sp_api/auth/o2/token"
    assert httpx.get(sandbox.url + "/_sandbox/health").json()["tenants"] == [A, B]
