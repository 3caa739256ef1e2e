"""Review decisions over the API on Postgres, as the API's own login role: the
SECURITY DEFINER recorder (key and scope checked in SQL), idempotent replays,
stale versions, append-only rows, an audit row per attempt, tenants apart.
(The embedded path and the loop through dbt are in test_supplier_marts.)"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime

import psycopg
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.contracts.supplier_risk import SUPPLIER_RISK
from core.settings import Settings
from serving.api_role import create_api_role
from serving.keys import create_key
from serving.main import create_app
from serving.publish import publish_table
from suppliers.reviews import audit_trail, decisions_for, not_same_pairs

API_ROLE = "bizos_api_sup_" + os.environ.get("PYTEST_XDIST_WORKER", "main")
VERSION = "a1b2c3d4e5f60718"
MATCH = {"list_name": "ofac_sdn", "entry_id": "ofac-1", "verdict": "not_same"}


def risk_row(tenant_id: str, supplier_id: str) -> dict[str, object]:
    reasons = [
        {"code": "sanctions_match", "label": "may be Romashka LLC on ofac_sdn", "points": 100,
         "evidence": "screening:ofac_sdn/ofac-1"},
    ]  # fmt: skip
    return {
        "tenant_id": tenant_id,
        "supplier_id": supplier_id,
        "legal_name": "ООО «Ромашка»",
        "country": "RU",
        "score": 100,
        "grade": "critical",
        "reasons": "sanctions_match:+100",
        "score_model": "supplier_rules_v1",
        "score_status": "scored",
        "compliance_risk": None,
        "sanctions_risk": 100,
        "delivery_risk": None,
        "country_risk": 30,
        "concentration_risk": None,
        "sanctions_hit": True,
        "review_status": "pending",
        "review_due_date": date(2026, 6, 2),
        "last_decision": None,
        "last_decision_id": None,
        "last_decided_at": None,
        "documents_json": "[]",
        "risk_version": VERSION,
        "reasons_json": json.dumps(reasons),
        "model_version": "supplier_rules_v1",
        "config_version": "v1-test",
        "scored_at": datetime(2026, 6, 1, tzinfo=UTC),
    }


@pytest.fixture
def api(pg_settings: Settings):
    for tenant in ("t1", "t2"):
        table = pa.Table.from_pylist([risk_row(tenant, "S-1")], schema=SUPPLIER_RISK.schema)
        publish_table(pg_settings, SUPPLIER_RISK, tenant, table)
    url = create_api_role(pg_settings, API_ROLE)
    api_settings = pg_settings.model_copy(update={"api_database_url": SecretStr(url)})
    with TestClient(create_app(api_settings)) as client:
        yield client


def post(client: TestClient, key: str, body: dict, idem: str, supplier: str = "S-1"):
    return client.post(
        f"/v1/suppliers/{supplier}/reviews",
        json=body,
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
    )


@pytest.mark.postgres
def test_decisions_through_the_api_role(api: TestClient, pg_settings: Settings, pg_url: str):
    writer = create_key(pg_settings, "t1", scopes=["scores:read", "reviews:write"])
    reader = create_key(pg_settings, "t1", scopes=["scores:read"])
    other = create_key(pg_settings, "t2", scopes=["scores:read", "reviews:write"])
    approve = {"decision": "approve", "comment": "not them", "risk_version": VERSION}

    got = api.get("/v1/suppliers/S-1/risk", headers={"X-API-Key": writer})
    assert got.status_code == 200 and got.json()["risk_version"] == VERSION
    assert post(api, reader, approve, "k-000001").status_code == 403
    assert post(api, writer, approve, "k-000002").status_code == 409  # open match
    stale = {**approve, "risk_version": "ffffffffffffffff", "match_verdicts": [MATCH]}
    assert post(api, writer, stale, "k-000003").status_code == 409
    good = {**approve, "match_verdicts": [MATCH]}
    first = post(api, writer, good, "k-000004")
    assert first.status_code == 201, first.text
    assert first.json()["reviewer"] == writer[: len(first.json()["reviewer"])]
    again = post(api, writer, good, "k-000004")
    assert (again.status_code, again.json()["decision_id"]) == (200, first.json()["decision_id"])
    assert post(api, writer, {**good, "comment": "other"}, "k-000004").status_code == 422
    assert post(api, writer, good, "k-000005", supplier="S-404").status_code == 404
    # the other tenant decides on its own S-1 only; t1's decisions stay t1's
    assert post(api, other, {**approve, "decision": "reject"}, "k-000004").status_code == 201

    decisions = decisions_for(pg_settings, "t1")
    assert [(d["decision"], d["risk_version"]) for d in decisions] == [("approve", VERSION)]
    assert not_same_pairs(decisions) == {("S-1", "ofac_sdn", "ofac-1")}
    assert [d["decision"] for d in decisions_for(pg_settings, "t2")] == ["reject"]
    trail = [(a["idempotency_key"], a["outcome"]) for a in audit_trail(pg_settings, "t1")]
    assert trail == [
        ("k-000002", "refused"),
        ("k-000003", "stale"),
        ("k-000004", "recorded"),
        ("k-000004", "replayed"),
        ("k-000004", "conflict"),
    ]
    # append-only, even for the owner
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE ops.supplier_review_decisions SET decision = 'reject'")
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM ops.supplier_review_audit")
