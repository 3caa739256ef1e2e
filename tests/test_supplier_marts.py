"""Supplier risk end to end through the lake and dbt: inbox files landed, screened,
documents (the supplier_docs lake tables, written here as that asset writes them)
checked against the policy on a fixed day, and the marts built on DuckDB and on
Postgres with the same rows. One dbt build per target for the module."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest

from core.contracts import supplier_docs
from core.settings import Settings, get_settings
from lake.files import partition_dir, write_partition
from suppliers.landing import (
    land_policy,
    land_purchase_orders,
    land_review_decisions,
    land_screening_entries,
    land_suppliers,
    read_table,
)
from suppliers.matches import screen_tenant
from suppliers.policy import parse_policy
from tests.test_dbt_project import dbt_build, load_raw, normalized

TENANT = "t1"
AS_OF = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SELECT = ("--select", "+mart_supplier_review_queue", "+mart_supplier_risk_history")

POLICY = f"""
version: 1
required_documents:
  - {{doc_type: certificate_of_insurance, check_name: true, check_number: true}}
  - {{doc_type: tax_form, check_name: true}}
expiry_warning_days: [1, 14, 30]
sanctions_threshold: 0.88
min_orders: 3
concentration_share: 0.5
as_of: {AS_OF.isoformat()}
"""

SUPPLIERS_CSV = """supplier_id,legal_name,aliases,country,certificate_of_insurance_number,contact
S-OK,Harbour Components Ltd,,GB,POL-100,anna@harbour.example
S-EXPIRING,Nordic Fasteners AB,Nordic Fast,SE,POL-200,
S-EXPIRED,Blue Ocean Foods S.A.,,ES,POL-300,
S-SANCTION,ООО «Ромашка»,Romashka Trading,RU,,
S-MISMATCH,Delta Plastics GmbH,,DE,POL-500,
S-BAD,,no legal name,FR,,
S-BADCOUNTRY,Some Co,,France,,
"""

SCREENING_JSONL = (
    "\n".join(
        json.dumps(e, ensure_ascii=False)
        for e in [
            {
                "id": "ofac-romashka",
                "schema": "Company",
                "properties": {"name": ["Romashka LLC"], "country": ["ru"]},
            },
            {
                "id": "ofac-other",
                "schema": "Person",
                "properties": {"name": ["Ivan Petrovich Sidorov"], "country": ["ru"]},
            },
        ]
    )
    + "\n{not json\n"
)

ORDERS = [
    # S-OK: three on time, no defects, most of the spend
    *(f"PO-{i},S-OK,2026-0{i}-01,2026-0{i}-10,2026-0{i}-09,9000,EUR,100,0" for i in (1, 2, 3)),
    # S-EXPIRING: late and defective
    *(
        f"PO-{i},S-EXPIRING,2026-0{i - 3}-01,2026-0{i - 3}-05,2026-0{i - 3}-20,1000,EUR,100,10"
        for i in (4, 5, 6)
    ),
    "PO-7,S-EXPIRED,2026-01-01,2026-01-05,,500,EUR,10,0",
    "PO-8,S-EXPIRED,2026-01-01,not-a-date,,500,EUR,10,0",
]

# (supplier, doc_type, expiry, legal name on the document, number on it)
DOCUMENTS = [
    ("S-OK", "certificate_of_insurance", "2027-01-01", "HARBOUR COMPONENTS LIMITED", "POL-100"),
    ("S-OK", "tax_form", None, "Harbour Components Ltd", None),
    ("S-EXPIRING", "certificate_of_insurance", "2026-06-10", "Nordic Fasteners AB", "POL-200"),
    ("S-EXPIRED", "certificate_of_insurance", "2026-05-01", "Blue Ocean Foods SA", "POL-300"),
    ("S-MISMATCH", "certificate_of_insurance", "2027-01-01", "Gamma Polymers GmbH", "POL-999"),
    ("S-MISMATCH", "tax_form", None, "Delta Plastics GmbH", None),
]


def write_documents(settings: Settings) -> None:
    docs, fields = [], []
    for i, (supplier, kind, expiry, name, number) in enumerate(DOCUMENTS):
        doc_id = f"{i:064x}"
        docs.append(
            {
                "tenant_id": TENANT,
                "document_id": doc_id,
                "supplier_id": supplier,
                "file_name": f"{kind}.pdf",
                "path": f"suppliers/{supplier}/{kind}.pdf",
                "size_bytes": 1000,
                "media_type": "application/pdf",
                "pages": 1,
                "doc_type": kind,
                "doc_type_confidence": 0.9,
                "extraction_method": "text",
                "text_chars": 500,
                "received_at": NOW,
                "_run_id": "test",
                "_ingested_at": NOW,
            }
        )
        for field, value in (
            ("expiry_date", expiry),
            ("legal_name", name),
            ("document_number", number),
        ):
            if value:
                fields.append(
                    {
                        "tenant_id": TENANT,
                        "document_id": doc_id,
                        "supplier_id": supplier,
                        "field": field,
                        "value": value,
                        "confidence": 0.9,
                        "page": 1,
                        "location": "line 3",
                        "method": "text",
                        "_run_id": "test",
                        "_ingested_at": NOW,
                    }
                )
    for table, schema, rows in (
        (supplier_docs.DOCUMENTS_TABLE, supplier_docs.DOCUMENTS_SCHEMA, docs),
        (supplier_docs.FIELDS_TABLE, supplier_docs.DOCUMENT_FIELDS_SCHEMA, fields),
    ):
        path = partition_dir(settings.lake_dir, supplier_docs.SOURCE, table, tenant=TENANT)
        write_partition(pa.Table.from_pylist(rows, schema=schema), path / f"{table}.parquet")


def write_inbox(settings: Settings) -> None:
    inbox = settings.tenant_inbox(TENANT)
    (inbox / "screening").mkdir(parents=True)
    (inbox / "suppliers.csv").write_text(SUPPLIERS_CSV, encoding="utf-8")
    (inbox / "screening" / "ofac_sdn.jsonl").write_text(SCREENING_JSONL, encoding="utf-8")
    header = (
        "po_id,supplier_id,ordered_at,promised_at,received_at,amount,currency,"
        "quantity,rejected_quantity"
    )
    (inbox / "purchase_orders.csv").write_text("\n".join([header, *ORDERS]) + "\n")
    old = time.time() - 60  # settled: not "still uploading"
    for path in inbox.rglob("*"):
        os.utime(path, (old, old))


def land_everything(settings: Settings) -> dict[str, object]:
    policy = parse_policy(POLICY, where="test policy")
    loads = {
        "suppliers": land_suppliers(settings, TENANT, now=NOW),
        "screening_entries": land_screening_entries(settings, TENANT, now=NOW),
        "purchase_orders": land_purchase_orders(settings, TENANT, now=NOW),
        "policy": land_policy(settings, TENANT, policy, now=NOW),
        "review_decisions": land_review_decisions(settings, TENANT, [], now=NOW),
    }
    screen_tenant(settings, TENANT, run_id="test", now=NOW)
    return loads


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, object]]]:
    home = tmp_path_factory.mktemp("bizos")
    settings = get_settings(home=home, database_url=None)
    write_inbox(settings)
    write_documents(settings)
    loads = land_everything(settings)
    dbt_build(settings, home / "dbt-duckdb", *SELECT)
    yield settings, loads


RISK_QUERY = """
select supplier_id, score, grade, score_status, compliance_risk, sanctions_risk,
       delivery_risk, country_risk, concentration_risk, sanctions_hit, review_status,
       review_due_date, reasons, reasons_json, documents_json, risk_version
from analytics.mart_supplier_risk order by supplier_id
"""


def duckdb_risk(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return normalized(conn.execute(RISK_QUERY).fetchall())


def risk_by_supplier(settings: Settings) -> dict[str, dict[str, object]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        cursor = conn.execute(RISK_QUERY)
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_bad_rows_are_quarantined_and_the_rest_lands(built):
    settings, loads = built
    suppliers = read_table(settings, "suppliers", TENANT)
    assert sorted(suppliers["supplier_id"].to_pylist()) == [
        "S-EXPIRED", "S-EXPIRING", "S-MISMATCH", "S-OK", "S-SANCTION",
    ]  # fmt: skip
    ok = next(r for r in suppliers.to_pylist() if r["supplier_id"] == "S-OK")
    assert json.loads(ok["attributes"]) == {
        "certificate_of_insurance_number": "POL-100",
        "contact": "anna@harbour.example",
    }
    assert loads["suppliers"].rows_quarantined == 2
    assert loads["screening_entries"].rows == 2
    assert loads["screening_entries"].rows_quarantined == 1  # the line that is not JSON
    assert loads["purchase_orders"].rows == 7
    assert loads["purchase_orders"].rows_quarantined == 1  # promised_at not a date
    from lake.files import read_partition
    from suppliers.landing import quarantine_path

    quarantined = read_partition(quarantine_path(settings, "suppliers", TENANT))
    reasons = sorted(quarantined["reason"].to_pylist())
    assert reasons == ["country 'FRANCE' is not an ISO 3166 alpha-2 code", "legal_name is empty"]


def test_a_rerun_lands_the_same_rows_not_more(built, tmp_path):
    settings, _ = built
    before = read_table(settings, "suppliers", TENANT).num_rows
    land_suppliers(settings, TENANT, now=NOW)
    assert read_table(settings, "suppliers", TENANT).num_rows == before


def test_every_supplier_gets_a_tier_and_reasons_with_evidence(built):
    settings, _ = built
    risk = risk_by_supplier(settings)
    assert set(risk) == {"S-OK", "S-EXPIRING", "S-EXPIRED", "S-SANCTION", "S-MISMATCH"}

    ok = risk["S-OK"]
    assert ok["grade"] == "low"
    assert ok["review_status"] == "not_required"
    assert "on_time:-5" in ok["reasons"]
    assert "spend_concentration:+15" in ok["reasons"]  # most of the tenant's spend
    assert "certificate_of_insurance_name_mismatch" not in ok["reasons"]  # Ltd = Limited

    expiring = risk["S-EXPIRING"]
    assert "certificate_of_insurance_expiring_14d:+12" in expiring["reasons"]
    assert "tax_form_missing:+20" in expiring["reasons"]
    assert "late_deliveries:+40" in expiring["reasons"]
    assert "defects:+30" in expiring["reasons"]
    assert expiring["grade"] in ("high", "critical")

    expired = risk["S-EXPIRED"]
    assert "certificate_of_insurance_expired:+30" in expired["reasons"]
    assert expired["delivery_risk"] is None  # one received order: unknown
    assert "delivery_unknown:+0" in expired["reasons"]
    # Whatever its score, a supplier whose required documents lapsed needs a human.
    assert expired["review_status"] == "pending" and expired["review_due_date"] is not None
    evidence = {r["code"]: r["evidence"] for r in json.loads(expired["reasons_json"])}
    assert evidence["certificate_of_insurance_expired"] == f"document:{3:064x}#p1:expiry_date"
    assert evidence["tax_form_missing"] == "policy:required_documents#tax_form"

    mismatch = risk["S-MISMATCH"]
    assert "certificate_of_insurance_name_mismatch:+10" in mismatch["reasons"]
    assert "certificate_of_insurance_number_mismatch:+10" in mismatch["reasons"]

    documents = json.loads(expired["documents_json"])
    assert [(d["doc_type"], d["status"]) for d in documents] == [
        ("certificate_of_insurance", "expired"),
        ("tax_form", "missing"),
    ]


def test_a_sanctions_match_is_critical_and_queued(built):
    settings, _ = built
    sanctioned = risk_by_supplier(settings)["S-SANCTION"]
    assert sanctioned["grade"] == "critical"
    assert sanctioned["sanctions_hit"] is True
    assert sanctioned["review_status"] == "pending"
    assert sanctioned["review_due_date"] == date(2026, 6, 2)  # critical: one day
    evidence = {r["code"]: r["evidence"] for r in json.loads(sanctioned["reasons_json"])}
    assert evidence["sanctions_match"] == "screening:ofac_sdn/ofac-romashka"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        queue = conn.execute(
            "select supplier_id, tier from analytics.mart_supplier_review_queue"
            " order by urgency, supplier_id"
        ).fetchall()
    assert ("S-SANCTION", "critical") in queue[:2]  # the most urgent first
    assert "S-OK" not in {s for s, _ in queue}


@pytest.mark.postgres
def test_postgres_marts_equal_duckdb_marts(built, pg_url: str):
    settings, _ = built
    load_raw(pg_url, settings, [TENANT])
    pg_settings = get_settings(home=settings.home, database_url=pg_url)
    dbt_build(pg_settings, Path(settings.home) / "dbt-postgres", *SELECT)
    with psycopg.connect(pg_url) as conn:
        on_postgres = normalized(conn.execute(RISK_QUERY).fetchall())
    on_duckdb = duckdb_risk(settings)
    assert len(on_duckdb) == 5
    # scored_at differs between the builds; every other column is the same
    assert on_postgres == on_duckdb


def post(client, key: str, supplier: str, body: dict, idem: str):
    return client.post(
        f"/v1/suppliers/{supplier}/reviews",
        json=body,
        headers={"X-API-Key": key, "Idempotency-Key": idem},
    )


def test_the_review_loop_end_to_end(built):
    """Last in the module: it changes the built warehouse. A risky supplier is in the
    queue; a decision over the API is checked (open match, stale version), recorded
    once (replays change nothing), audited, seen by the sensor, and after the
    refresh the supplier is approved and the ruled-out match is gone for good."""
    from dagster import DagsterInstance, build_sensor_context
    from fastapi.testclient import TestClient

    from assets.partitions import tenants
    from core.contracts.supplier_risk import SUPPLIER_RISK
    from pipelines.definitions import supplier_reviews
    from serving.keys import create_key
    from serving.main import create_app
    from serving.publish import publish_table
    from suppliers.reviews import audit_trail, decisions_for
    from warehouse.marts import read_mart

    settings, _ = built
    publish_table(
        settings, SUPPLIER_RISK, TENANT, read_mart(settings, SUPPLIER_RISK, tenant_id=TENANT)
    )
    key = create_key(settings, TENANT, scopes=["scores:read", "reviews:write"])
    reader_only = create_key(settings, TENANT, scopes=["scores:read"])
    with TestClient(create_app(settings)) as client:
        queue = client.get("/v1/suppliers/reviews?status=pending", headers={"X-API-Key": key})
        assert queue.status_code == 200
        assert "S-SANCTION" in {i["supplier_id"] for i in queue.json()["items"]}
        risk = client.get("/v1/suppliers/S-SANCTION/risk", headers={"X-API-Key": key}).json()
        version = risk["risk_version"]
        assert risk["tier"] == "critical" and risk["review_status"] == "pending"
        assert {"doc_type": "tax_form", "status": "missing"}.items() <= risk["documents"][1].items()

        approve = {
            "decision": "approve",
            "comment": "checked the registry",
            "risk_version": version,
        }
        verdict = {"list_name": "ofac_sdn", "entry_id": "ofac-romashka", "verdict": "not_same"}
        # the reader-only key may not decide
        assert post(client, reader_only, "S-SANCTION", approve, "idem-0000").status_code == 403
        # approval over an open sanctions match is refused
        assert post(client, key, "S-SANCTION", approve, "idem-0001").status_code == 409
        # a confirmed match can never come with an approval
        confirmed = {**approve, "match_verdicts": [{**verdict, "verdict": "confirmed"}]}
        assert post(client, key, "S-SANCTION", confirmed, "idem-000c").status_code == 422
        # a decision on a risk version that is no longer current is refused
        stale = {**approve, "risk_version": "0123456789abcdef", "match_verdicts": [verdict]}
        assert post(client, key, "S-SANCTION", stale, "idem-0002").status_code == 409
        good = {**approve, "match_verdicts": [verdict]}
        first = post(client, key, "S-SANCTION", good, "idem-0003")
        assert first.status_code == 201, first.text
        again = post(client, key, "S-SANCTION", good, "idem-0003")
        assert again.status_code == 200
        assert again.json()["decision_id"] == first.json()["decision_id"]
        assert again.json()["replayed"] is True
        other = post(client, key, "S-SANCTION", {**good, "comment": "changed"}, "idem-0003")
        assert other.status_code == 422
        assert first.json()["reviewer"] == key[: len(first.json()["reviewer"])]

    decisions = decisions_for(settings, TENANT)
    assert [(d["supplier_id"], d["decision"]) for d in decisions] == [("S-SANCTION", "approve")]
    trail = [(a["idempotency_key"], a["outcome"]) for a in audit_trail(settings, TENANT)]
    assert trail == [
        ("idem-0001", "refused"),
        ("idem-0002", "stale"),
        ("idem-0003", "recorded"),
        ("idem-0003", "replayed"),
        ("idem-0003", "conflict"),
    ]

    # the sensor sees the new decision and asks for the tenant's supplier refresh
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tenants.name or "tenants", [TENANT])
    from assets.resources import BizosSettings

    context = build_sensor_context(
        instance=instance,
        resources={"bizos": BizosSettings(home=str(settings.home), database_url="")},
    )
    result = supplier_reviews(context)
    assert [r.partition_key for r in result.run_requests] == [TENANT]

    # what that run does: decisions landed, screening, dbt. Two earlier approvals
    # (as the ops database would hold them) check the lapse rule on fixed dates:
    # S-EXPIRED's insurance expired on 2026-05-01, after its approval on 04-01.
    earlier = [
        {
            "decision_id": 900 + i,
            "supplier_id": supplier,
            "decision": "approve",
            "comment": "reviewed in April",
            "reviewer": "bz_test",
            "risk_version": "earlier",
            "match_verdicts": "[]",
            "decided_at": datetime(2026, 4, 1, tzinfo=UTC),
        }
        for i, supplier in enumerate(["S-EXPIRED", "S-OK"])
    ]
    land_review_decisions(settings, TENANT, decisions + earlier, now=NOW)
    screen_tenant(settings, TENANT, run_id="refresh", now=NOW)
    assert read_table(settings, "screening_matches", TENANT).num_rows == 0  # never again
    # the supplier models and what they read (refresh_suppliers runs everything
    # downstream of the supplier inputs: on DuckDB staging is a table the build
    # refreshes from the lake), in the first build's folder so dbt's partial parse
    # is reused
    marts = ("+mart_supplier_risk", "+mart_supplier_risk_history", "+mart_supplier_review_queue")
    dbt_build(settings, Path(settings.home) / "dbt-duckdb", "--select", *marts)
    risk = risk_by_supplier(settings)
    after = risk["S-SANCTION"]
    assert after["review_status"] == "approved"
    assert after["sanctions_hit"] is False
    assert "sanctions_match" not in after["reasons"]
    # an approval lapses when a required document expired since; one that did not holds
    assert risk["S-EXPIRED"]["review_status"] == "lapsed"
    assert risk["S-OK"]["review_status"] == "approved"
    assert risk["S-OK"]["review_due_date"] == date(2027, 4, 1)  # approval + 365 days
