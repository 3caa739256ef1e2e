"""The generator: deterministic bytes, a ground truth that matches the files, linked sources."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from sandbox.crm_export import generate_crm_export
from sandbox.generator import TABLES, GroundTruth, generate_sources, id_checksum, table_path

TENANTS = ["acme-robotics", "bluebird-retail"]
SCALE = 0.1


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, GroundTruth]:
    out = tmp_path_factory.mktemp("gen")
    inbox = tmp_path_factory.mktemp("inbox")
    truth = generate_sources(
        out, tenants=TENANTS, scale=SCALE, seed=7, with_crm_exports=True, inbox_dir=inbox
    )
    return out, truth


def test_same_arguments_same_bytes(generated, tmp_path):
    out, _ = generated
    again = tmp_path / "again"
    generate_sources(again, tenants=TENANTS, scale=SCALE, seed=7)
    assert _digest(out) == _digest(again)


def test_another_seed_other_data(generated, tmp_path):
    out, truth = generated
    other = generate_sources(tmp_path / "other", tenants=TENANTS[:1], scale=SCALE, seed=8)
    name = "stripe.charges"
    assert other.table(TENANTS[0], name).count == truth.table(TENANTS[0], name).count
    assert other.table(TENANTS[0], name).id_checksum != truth.table(TENANTS[0], name).id_checksum


def test_every_source_and_table_is_written_and_matches_the_truth(generated):
    out, truth = generated
    loaded = GroundTruth.load(out)
    assert loaded.to_json() == truth.to_json()
    con = duckdb.connect()
    for tenant in TENANTS:
        for source, tables in TABLES.items():
            for table in tables:
                path = table_path(out, tenant, source, table)
                tt = truth.table(tenant, f"{source}.{table}")
                cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()}
                time_col = "updated" if "updated" in cols else "created"
                assert {"id", time_col, "seq", "tenant_id", "payload"} <= cols
                rows = con.execute(
                    f"SELECT id, {time_col}, seq, tenant_id, payload FROM '{path}'"
                ).fetchall()
                assert len(rows) == tt.count > 0, (tenant, source, table)
                assert id_checksum(r[0] for r in rows) == tt.id_checksum
                assert len({r[0] for r in rows}) == len(rows), "ids are unique"
                assert [r[2] for r in rows] == list(range(len(rows))), "seq is the row number"
                keys = [(r[1], r[0]) for r in rows]
                assert keys == sorted(keys), "rows are in (time, id) order"
                assert {r[3] for r in rows} == {tenant}
                # The provider's own key: an id, GA4's client id, SP-API's ASIN.
                key = {"ga4": "clientId", "sp_api": "asin"}.get(source, "id")
                for r in rows[:5]:
                    payload = json.loads(r[4])
                    assert payload.get(key) or payload.get(key.upper())


def test_scale_and_count_overrides(tmp_path):
    truth = generate_sources(
        tmp_path, tenants=["t1"], scale=0.05, counts={"stripe.charges": 777, "crm_api.leads": 33}
    )
    assert truth.table("t1", "stripe.charges").count == 777
    assert truth.table("t1", "crm_api.leads").count == 33
    assert truth.table("t1", "ai_usage.usage").count == 150
    with pytest.raises(ValueError, match="invoices cannot be sized directly"):
        generate_sources(tmp_path, tenants=["t1"], counts={"stripe.invoices": 5})
    with pytest.raises(ValueError, match="unknown table"):
        generate_sources(tmp_path, tenants=["t1"], counts={"stripe.refunds": 5})
    with pytest.raises(ValueError, match="invalid tenant id"):
        generate_sources(tmp_path, tenants=["Bad Tenant"])


def test_stripe_objects_are_linked_as_stripe_links_them(generated):
    out, _ = generated
    con = duckdb.connect()

    def payloads(table: str) -> list[dict]:
        path = table_path(out, TENANTS[0], "stripe", table)
        return [json.loads(p) for (p,) in con.execute(f"SELECT payload FROM '{path}'").fetchall()]

    charges = payloads("charges")
    txns = {t["id"]: t for t in payloads("balance_transactions")}
    customers = {c["id"] for c in payloads("customers")}
    invoices = {i["id"]: i for i in payloads("invoices")}
    for ch in charges:
        assert ch["id"].startswith("ch_") and ch["object"] == "charge"
        assert ch["livemode"] is False and isinstance(ch["amount"], int)
        assert ch["customer"] is None or ch["customer"] in customers
        if ch["status"] == "succeeded":
            txn = txns[ch["balance_transaction"]]
            assert txn["source"] == ch["id"] and txn["amount"] == ch["amount"]
            assert txn["net"] == txn["amount"] - txn["fee"]
        else:
            assert ch["balance_transaction"] is None and ch["failure_code"]
        if ch["invoice"]:
            assert invoices[ch["invoice"]]["charge"] == ch["id"]
    refunds = [t for t in txns.values() if t["type"] == "refund"]
    assert all(t["amount"] < 0 and t["source"].startswith("re_") for t in refunds)
    succeeded = sum(ch["status"] == "succeeded" for ch in charges)
    assert len(txns) == succeeded + len(refunds)


def test_crm_api_leads_are_the_export_leads(generated, tmp_path):
    out, truth = generated
    con = duckdb.connect()
    path = table_path(out, TENANTS[0], "crm_api", "leads")
    api = {
        lead["id"]: lead
        for (p,) in con.execute(f"SELECT payload FROM '{path}'").fetchall()
        for lead in [json.loads(p)]
    }
    n = truth.table(TENANTS[0], "crm_api.leads").count
    export = generate_crm_export(tmp_path, TENANTS[0], leads=n, seed=7)
    with export.path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(api) == n
    for row in rows:
        lead = api[row["lead_id"]]
        for col in ("first_name", "last_name", "company", "title", "status", "created_at"):
            assert lead[col] == row[col]
        if row["email"] != "n/a":  # the export's deliberately unusable rows
            assert lead["email"] == row["email"]
    hidden = truth.tenants[TENANTS[0]].leads
    export_truth = json.loads((tmp_path / TENANTS[0] / ".ground_truth.json").read_text())
    assert {k: v["converts"] for k, v in export_truth.items()} == {
        k: v.converts for k, v in hidden.items()
    }
    # Engagement carries the hidden signal: converters have more activities.
    conv = [v.activities for v in hidden.values() if v.converts]
    rest = [v.activities for v in hidden.values() if not v.converts]
    assert conv and rest and sum(conv) / len(conv) > sum(rest) / len(rest)


def test_sources_agree_about_people(generated):
    out, truth = generated
    con = duckdb.connect()
    tenant = TENANTS[0]

    def payloads(source: str, table: str) -> list[dict]:
        path = table_path(out, tenant, source, table)
        return [json.loads(p) for (p,) in con.execute(f"SELECT payload FROM '{path}'").fetchall()]

    leads = {lead["id"]: lead for lead in payloads("crm_api", "leads")}
    converted = {lid for lid, lt in truth.tenants[tenant].leads.items() if lt.status == "converted"}
    customers = payloads("stripe", "customers")
    linked = {c["metadata"]["crm_lead_id"]: c for c in customers if c["metadata"]}
    assert set(linked) == converted
    for lead_id, customer in linked.items():
        assert customer["email"] == leads[lead_id]["email"]
    emails = {lead["email"] for lead in leads.values()}
    forms = payloads("cms_forms", "submissions")
    assert any(f["email"] in emails for f in forms)
    assert any(f["email"] not in emails for f in forms)
    ga4_users = {r["userId"] for r in payloads("ga4", "report_rows")} - {"(not set)"}
    assert ga4_users and ga4_users <= set(leads)


def test_defects_only_when_asked_and_as_documented(generated, tmp_path):
    out, truth = generated
    assert not any(t.defects for tt in truth.tenants.values() for t in tt.tables.values())
    bad = generate_sources(tmp_path, tenants=TENANTS[:1], scale=SCALE, with_defects=True)
    con = duckdb.connect()
    tt = bad.table(TENANTS[0], "stripe.charges")
    missing = tt.defective_ids("missing_field")
    drift = tt.defective_ids("unknown_field")
    assert missing and drift
    path = table_path(tmp_path, TENANTS[0], "stripe", "charges")
    for row_id, p in con.execute(f"SELECT id, payload FROM '{path}'").fetchall():
        charge = json.loads(p)
        assert ("amount" in charge) == (row_id not in missing)
        assert ("payment_method_options_v2" in charge) == (row_id in drift)
    # The same records are served either way: counts and ids do not change.
    assert tt.count == truth.table(TENANTS[0], "stripe.charges").count


def test_cli_generate_writes_sources_and_crm_exports(tmp_path):
    from typer.testing import CliRunner

    from cli.sandbox import sandbox_app, tenant_names

    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(
        sandbox_app,
        ["generate", "--tenants", "2", "--scale", "0.02", "--count", "stripe.charges=123"],
        env={"BIZOS_HOME": str(home)},
    )
    assert result.exit_code == 0, result.output
    truth = GroundTruth.load(home / "sandbox")
    assert sorted(truth.tenants) == sorted(tenant_names(2))
    assert truth.table(tenant_names(2)[1], "stripe.charges").count == 123
    for tenant in tenant_names(2):
        assert (home / "inbox" / tenant / "crm" / "leads_export.csv").is_file()
    bad = runner.invoke(
        sandbox_app, ["generate", "--count", "stripe.invoices=3"], env={"BIZOS_HOME": str(home)}
    )
    assert bad.exit_code == 2 and "cannot be sized directly" in " ".join(bad.output.split())
    missing = runner.invoke(sandbox_app, ["serve", "--data", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "run generate first" in " ".join(missing.output.split())
    assert tenant_names(14)[-2:] == ["tenant-013", "tenant-014"]


def test_the_export_plants_a_custom_signal_the_rules_cannot_see(tmp_path):
    """budget_k (a custom column) is higher for leads that convert; owner and
    utm_campaign carry nothing. Drawn from its own stream: the leads stay the same."""
    from statistics import median

    from sandbox.crm_export import CUSTOM_COLUMNS, iter_export_leads

    export = generate_crm_export(tmp_path, TENANTS[0], leads=400, seed=7)
    with export.path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames is not None and reader.fieldnames[-3:] == list(CUSTOM_COLUMNS)
    truth = json.loads((tmp_path / TENANTS[0] / ".ground_truth.json").read_text())
    budgets = {True: [], False: []}
    for row in rows:
        budgets[truth[row["lead_id"]]["converts"]].append(int(row["budget_k"]))
    assert len(budgets[True]) > 30 and median(budgets[True]) > 1.8 * median(budgets[False])
    # The first leads of a longer export are the leads of a shorter one, field for field.
    short = [
        (x.lead_id, x.email, x.title, x.status) for x in iter_export_leads(TENANTS[0], leads=5)
    ]
    long = [
        (x.lead_id, x.email, x.title, x.status) for x in iter_export_leads(TENANTS[0], leads=400)
    ]
    assert long[:5] == short
