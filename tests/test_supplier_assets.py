"""The supplier assets as Dagster runs them: one materialization of the inputs and
the screening for a tenant, landing the lake tables dbt reads; a broken policy
fails the tenant's run with the file and key named."""

from __future__ import annotations

import os
import time

import pytest
from dagster import DagsterInstance, materialize

from assets.partitions import tenants
from assets.resources import BizosSettings
from assets.suppliers import supplier_inputs
from core.contracts.suppliers import INPUT_TABLES
from core.settings import Settings
from suppliers.landing import lake_path, read_table
from suppliers.policy import SupplierPolicyError, load_policy, parse_policy


def drop(settings: Settings, tenant: str, files: dict[str, str]) -> None:
    inbox = settings.tenant_inbox(tenant)
    for name, text in files.items():
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        old = time.time() - 60
        os.utime(path, (old, old))


def test_one_materialization_lands_every_supplier_table(settings: Settings) -> None:
    drop(
        settings,
        "t1",
        {
            "suppliers.csv": "supplier_id,legal_name,aliases,country\n"
            "S1,Acme Trading Co. Ltd,ACME TRD,CN\nS2,Harbour Components Ltd,,GB\n",
            "screening/un_list.csv": "id,name,aliases,countries\n"
            "u1,ACME TRADING LIMITED,,CN\nu2,Someone Else,,FR\n",
        },
    )
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tenants.name or "tenants", ["t1"])
    result = materialize(
        [supplier_inputs],
        partition_key="t1",
        instance=instance,
        resources={"bizos": BizosSettings(home=str(settings.home), database_url="")},
    )
    assert result.success
    for table in INPUT_TABLES:
        assert lake_path(settings, table, "t1").exists(), table
    matches = read_table(settings, "screening_matches", "t1").to_pylist()
    assert [(m["supplier_id"], m["list_name"], m["entry_id"]) for m in matches] == [
        ("S1", "un_list", "u1")
    ]
    # no purchase_orders.csv: an empty, typed partition, not a failure
    assert read_table(settings, "purchase_orders", "t1").num_rows == 0
    policy = read_table(settings, "policy", "t1").to_pylist()[0]
    assert policy["config_version"] == load_policy("t1").config_version


def test_a_broken_policy_names_the_file_and_key() -> None:
    with pytest.raises(SupplierPolicyError, match=r"test\.yaml: tiers: .*medium < high"):
        parse_policy("version: 1\ntiers: {medium: 60, high: 50}\n", where="test.yaml")
    with pytest.raises(
        SupplierPolicyError, match=r"required_documents\.0: .*doc_type .passport. not in"
    ):
        parse_policy("version: 1\nrequired_documents: [{doc_type: passport}]\n", where="test.yaml")


def test_the_demo_supplier_inbox_lands_with_its_planted_match(settings: Settings) -> None:
    """The sandbox's supplier files (for the demo) are read cleanly, the same bytes
    every time, and its planted sanctions match is found."""
    from sandbox.supplier_inbox import generate_supplier_inbox
    from suppliers.landing import land_purchase_orders, land_screening_entries, land_suppliers
    from suppliers.landing import utc_now as now
    from suppliers.matches import screen_tenant

    first = generate_supplier_inbox(settings.inbox_dir, "demo-t")
    data = (settings.tenant_inbox("demo-t") / "purchase_orders.csv").read_bytes()
    generate_supplier_inbox(settings.inbox_dir, "demo-t")
    assert (settings.tenant_inbox("demo-t") / "purchase_orders.csv").read_bytes() == data
    loads = [
        land(settings, "demo-t", now=now())
        for land in (land_suppliers, land_screening_entries, land_purchase_orders)
    ]
    assert [load.rows_quarantined for load in loads] == [0, 0, 0]
    assert loads[2].rows == first.orders
    screen_tenant(settings, "demo-t", run_id="test", now=now())
    matches = read_table(settings, "screening_matches", "demo-t").to_pylist()
    assert {(m["supplier_id"], m["entry_id"]) for m in matches if m["score"] >= 0.88} == {
        (first.planted_match, "demo-1")
    }


def test_the_dbt_macro_knows_every_document_kind() -> None:
    """supplier_record_number() reads `<doc_type>_number` per kind from a list in
    the macro: it must name exactly the contract's kinds."""
    import re
    from pathlib import Path

    from core.contracts.suppliers import DOC_TYPES

    macro = Path(__file__).resolve().parent.parent / "dbt/macros/suppliers/supplier_checks.sql"
    listed = re.search(r"supplier_doc_types\(\).*?return\(\[(.*?)\]\)", macro.read_text(), re.S)
    assert listed is not None
    assert tuple(re.findall(r"'([a-z_]+)'", listed.group(1))) == DOC_TYPES


def test_the_review_sensor_asks_once_per_new_decision(settings: Settings) -> None:
    from dagster import build_sensor_context

    from pipelines.definitions import supplier_reviews
    from suppliers.reviews import record_decision

    def decide(idem: str) -> None:
        record_decision(
            settings, tenant_id="t9", reviewer="bz_x", supplier_id="S1", decision="reject",
            comment="no", risk_version="v", current_version="v", reasons_seen=[],
            match_verdicts=[], idempotency_key=idem, body_hash=idem,
        )  # fmt: skip

    instance = DagsterInstance.ephemeral()
    resources = {"bizos": BizosSettings(home=str(settings.home), database_url="")}

    def tick(cursor: str | None):
        context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return supplier_reviews(context)

    decide("first-decision")
    early = tick(None)  # t9 is not a partition yet: no run, and its decision is kept
    assert early.run_requests == []
    instance.add_dynamic_partitions(tenants.name or "tenants", ["t9"])
    first = tick(early.cursor)
    assert [r.partition_key for r in first.run_requests] == ["t9"]
    assert tick(first.cursor).run_requests == []  # nothing new
    decide("second-decision")
    assert len(tick(first.cursor).run_requests) == 1


def test_the_demo_documents_carry_what_the_demo_shows(tmp_path) -> None:
    """The demo's documents, read as the pipeline reads them: the planted cases say
    what the demo's risk and queue show."""
    from datetime import date

    from sandbox.supplier_documents import generate_supplier_documents
    from sandbox.supplier_inbox import generate_supplier_inbox
    from supplier_docs.extraction import RulesExtractor
    from supplier_docs.reading import Rejected, read_document

    suppliers = generate_supplier_inbox(tmp_path, "demo-t")
    today = date(2026, 11, 29)
    generated = generate_supplier_documents(tmp_path, suppliers, today=today)
    folder = tmp_path / "demo-t" / "suppliers"

    def fields(supplier: str, name: str) -> dict[str, str]:
        data = (folder / supplier / name).read_bytes()
        read = RulesExtractor().extract(read_document(data, name, max_pages=5))
        return {f.field: f.value for f in read.fields}

    record = {s["supplier_id"]: s for s in suppliers.suppliers}
    assert (
        fields("SUP-001", "insurance.pdf")["document_number"]
        == (record["SUP-001"]["certificate_of_insurance_number"])
    )
    assert fields("SUP-002", "insurance.pdf")["expiry_date"] == "2026-12-11"  # in 12 days
    assert fields("SUP-003", "insurance.pdf")["expiry_date"] == "2026-11-09"  # expired
    assert fields("SUP-007", "insurance.pdf")["document_number"] == "POL-000001"
    with pytest.raises(Rejected):
        read_document((folder / "SUP-005" / "iso9001.pdf").read_bytes(), "iso9001.pdf", max_pages=5)
    assert not (folder / "SUP-006" / "w9.pdf").exists()
    assert set(generated.cases) == {f"SUP-00{i}" for i in range(2, 8)}
    # Complete uploads: none waits out the inbox's settle window.
    assert all(p.stat().st_mtime < time.time() - 30 for p in generated.files)
