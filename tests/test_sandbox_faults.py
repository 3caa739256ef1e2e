"""Faults injected into the sandbox behave as docs/sandbox.md says, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.generator import generate_sources, id_checksum
from sandbox.server import RunningSandbox, start_sandbox

T = "acme-robotics"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    out = tmp_path_factory.mktemp("faults")
    generate_sources(out, tenants=[T], scale=0.05)
    with start_sandbox(out) as running:
        yield running


@pytest.fixture
def sb(sandbox) -> Iterator[RunningSandbox]:
    sandbox.clear_faults()
    sandbox.reset_log()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
def stripe(sb) -> Iterator[httpx.Client]:
    key = sb.tenant_token(T, "stripe")
    with httpx.Client(
        base_url=sb.base_url("stripe"), headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as c:
        yield c


def test_429_storm_with_retry_after_then_recovery(sb, stripe):
    sb.inject("stripe", "429", path="/v1/charges", count=2, retry_after=3)
    first, second, third = (stripe.get("/v1/charges") for _ in range(3))
    for r in (first, second):
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert r.json()["error"]["code"] == "rate_limit"
    assert third.status_code == 200
    assert [r.fault for r in sb.requests("stripe", "/v1/charges")] == ["429", "429", None]
    assert sb.count("stripe", "/v1/charges") == 3


def test_after_skips_the_first_matching_requests(sb, stripe):
    sb.inject("stripe", "500", path="/v1/charges", after=2, count=1)
    statuses = [stripe.get("/v1/charges").status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]
    assert sb.faults[0]["seen"] == 3 and sb.faults[0]["fired"] == 1


def test_503_and_path_and_source_scoping(sb, stripe):
    sb.inject("stripe", "503", path="/v1/charges", count=0, retry_after=1)
    assert stripe.get("/v1/customers").status_code == 200
    r = stripe.get("/v1/charges")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["type"] == "api_error"
    crm = httpx.get(
        sb.base_url("crm_api") + "/api/v1/leads",
        headers={"Authorization": f"Bearer {sb.tenant_token(T, 'crm_api')}"},
    )
    assert crm.status_code == 200
    assert stripe.get("/v1/charges").status_code == 503, "count=0 lasts until cleared"
    sb.clear_faults()
    assert stripe.get("/v1/charges").status_code == 200


def test_slow_page_arrives_late_but_whole(sb, stripe):
    sb.inject("stripe", "slow", delay=0.4)
    started = time.perf_counter()
    r = stripe.get("/v1/charges")
    assert time.perf_counter() - started >= 0.4
    assert r.status_code == 200 and r.json()["data"]
    with pytest.raises(httpx.ReadTimeout):
        sb.inject("stripe", "slow", delay=1.0)
        stripe.get("/v1/charges", timeout=0.2)
    # The server still finishes the abandoned request and logs it; wait for that, so
    # it does not land in the next test's request log.
    deadline = time.monotonic() + 10
    while len(sb.requests("stripe", "/v1/charges")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.fault for r in sb.requests("stripe", "/v1/charges")] == ["slow", "slow"]


def test_drop_cuts_the_connection_mid_body(sb, stripe):
    sb.inject("stripe", "drop", path="/v1/charges")
    with pytest.raises(httpx.TransportError):
        stripe.get("/v1/charges", params={"limit": 100})
    assert stripe.get("/v1/charges").status_code == 200, "the next request is served"
    assert [r.fault for r in sb.requests("stripe")] == ["drop", None]


def test_malformed_page_is_not_json(sb, stripe):
    sb.inject("stripe", "malformed")
    r = stripe.get("/v1/charges", params={"limit": 50})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_faults_speak_each_providers_shape(sb):
    sb.inject("ga4", "429", retry_after=2)
    prop = sb.credential(T, "ga4")["property_id"]
    r = httpx.post(
        f"{sb.base_url('ga4')}/v1beta/properties/{prop}:runReport",
        json={},
        headers={"Authorization": f"Bearer {sb.tenant_token(T, 'ga4')}"},
    )
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    sb.inject("saleor", "drop")
    with pytest.raises(httpx.TransportError):
        httpx.post(
            sb.base_url("saleor") + "/graphql/",
            json={"query": "{ products(first: 100) { edges { node { id } } } }"},
            headers={"Authorization": f"Bearer {sb.tenant_token(T, 'saleor')}"},
        )


def test_admin_endpoint_adds_lists_and_clears_faults(sb, stripe):
    admin = sb.url + "/_sandbox/faults"
    r = httpx.post(
        admin,
        json={
            "source": "stripe",
            "path": "/v1/charges",
            "kind": "429",
            "count": 1,
            "retry_after": 0,
        },
    )
    assert r.status_code == 201 and r.json()["kind"] == "429"
    assert len(httpx.get(admin).json()["faults"]) == 1
    assert stripe.get("/v1/charges").status_code == 429
    assert stripe.get("/v1/charges").status_code == 200
    httpx.post(admin, json={"source": "stripe", "kind": "500", "count": 0})
    assert httpx.delete(admin).status_code == 204
    assert stripe.get("/v1/charges").status_code == 200
    assert httpx.post(admin, json={"source": "stripe", "kind": "418"}).status_code == 400
    assert httpx.post(admin, json={"source": "paypal", "kind": "500"}).status_code == 400
    log = httpx.get(sb.url + "/_sandbox/requests").json()["requests"]
    assert [(x["path"], x["status"]) for x in log][-1] == ("/v1/charges", 200)


def test_a_retrying_client_still_gets_every_record_once(sb, stripe):
    sb.inject("stripe", "429", path="/v1/charges", after=1, count=3, retry_after=0)
    sb.inject("stripe", "drop", path="/v1/charges", after=5)
    sb.inject("stripe", "malformed", path="/v1/charges", after=7)
    sb.inject("stripe", "503", path="/v1/charges", after=9, retry_after=0)
    ids: list[str] = []
    params: dict = {"limit": 10}
    retries = 0
    while True:
        try:
            r = stripe.get("/v1/charges", params=params)
            if r.status_code in (429, 503):
                time.sleep(float(r.headers["retry-after"]))
                retries += 1
                continue
            body = r.json()
        except (httpx.TransportError, json.JSONDecodeError):
            retries += 1
            continue
        ids += [c["id"] for c in body["data"]]
        if not body["has_more"]:
            break
        params["starting_after"] = body["data"][-1]["id"]
    truth = sb.ground_truth.table(T, "stripe.charges")
    assert len(ids) == len(set(ids)) == truth.count
    assert id_checksum(ids) == truth.id_checksum
    assert retries == 6
    assert sum(1 for r in sb.requests("stripe", "/v1/charges") if r.fault) == 6
