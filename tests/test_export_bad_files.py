"""Bad export files, as tenants (and attackers) upload them: every physical line
ends up loaded or quarantined, one bad row costs one row, and nothing in one
tenant's inbox reaches another tenant's lake."""

from __future__ import annotations

import os
import random
import time

import polars as pl
import psycopg
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from assets.crm_export import crm_export_leads
from assets.partitions import tenants
from assets.raw_tables import raw_tables
from assets.resources import BizosSettings
from core.contracts.crm_export import REQUIRED_COLUMNS
from core.settings import Settings, get_settings
from exports.crm_csv import EXCERPT_CHARS, MAX_RECORD_BYTES
from exports.crm_leads import LeadsLoad, ingest_crm_leads, read_leads, read_quarantine
from exports.inbox import scan_inbox, tenants_with_inbox
from pipelines.definitions import tenant_inboxes
from quality.crm_leads import row_rule_failures, validate_crm_leads

HEADER = ",".join(REQUIRED_COLUMNS)


def lead_line(n: int, *, company: str | None = None, email: str | None = None) -> str:
    company = company if company is not None else f"Firm {n}"
    email = email if email is not None else f"person{n}@firm{n}.com"
    return (
        f"L{n:03d},{email},First{n},Last{n},{company},VP Sales,software,51-200,US,referral,"
        f"2026-10-{(n % 28) + 1:02d}T10:00:00Z,new"
    )


def drop(settings: Settings, tenant: str, name: str, content: str | bytes, *, age: float = 60):
    folder = settings.tenant_inbox(tenant) / "crm"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def export_of(lines: list[str]) -> str:
    return HEADER + "\n" + "\n".join(lines) + "\n"


def lead_ids(settings: Settings, tenant: str) -> list[str]:
    table = read_leads(settings, tenant)
    return [] if table is None else sorted(table.column("lead_id").to_pylist())


def quarantined(settings: Settings, tenant: str) -> list[dict]:
    table = read_quarantine(settings, tenant)
    return [] if table is None else table.to_pylist()


def assert_every_line_accounted(load: LeadsLoad, data_lines: int) -> None:
    assert load.lines_read == data_lines
    assert load.lines_loaded + load.lines_quarantined + load.lines_blank == data_lines


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("x" * 200 * 1024, "field larger than field limit"),  # a cell over 128 KiB
        ("y" * 3 * MAX_RECORD_BYTES, "over the 1,048,576-byte limit"),  # a line over the bound
    ],
)
def test_an_over_long_cell_costs_its_row_only_and_is_not_copied_whole(settings, cell, reason):
    lines = [lead_line(n) for n in range(1, 99)]
    lines[3] = lead_line(4, company=cell)  # line 5 of the file
    drop(settings, "t1", "a.csv", export_of(lines))
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, 98)
    assert load.rows_loaded == 97 and load.lines_quarantined == 1
    assert "L004" not in lead_ids(settings, "t1") and len(lead_ids(settings, "t1")) == 97
    [q] = quarantined(settings, "t1")
    assert (q["source_file"], q["source_line"]) == ("a.csv", 5)
    assert reason in q["reason"]
    assert q["raw_record"].startswith("L004,person4@firm4.com")
    assert len(q["raw_record"]) <= EXCERPT_CHARS + 100


def test_a_stray_quote_costs_its_row_only(settings):
    lines = [lead_line(n) for n in range(1, 21)]
    lines[3] = lead_line(4, company='"Unclosed Firm')  # opens a quote on line 5, never closed
    drop(settings, "t1", "a.csv", export_of(lines))
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, 20)
    assert load.rows_loaded == 19
    [q] = quarantined(settings, "t1")
    assert q["source_line"] == 5 and "unreadable CSV" in q["reason"]


def test_a_stray_quote_closed_by_a_later_one_costs_only_the_first_row(settings):
    lines = [lead_line(n) for n in range(1, 21)]
    lines[3] = lead_line(4, company='"Open')  # line 5 opens a quoted cell ...
    lines[7] = lead_line(8, company='Bob"s Firm')  # ... line 9 closes it, mid-cell
    drop(settings, "t1", "a.csv", export_of(lines))
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, 20)
    assert [q["source_line"] for q in quarantined(settings, "t1")] == [5]
    table = read_leads(settings, "t1")
    assert table is not None and table.num_rows == 19
    companies = dict(
        zip(table.column("lead_id").to_pylist(), table.column("company").to_pylist(), strict=True)
    )
    assert companies["L008"] == 'Bob"s Firm' and companies["L005"] == "Firm 5"


def test_a_quoted_newline_is_one_record_and_all_its_lines_count_as_loaded(settings):
    lines = [lead_line(1), lead_line(2, company='"Acme\nRobotics, Inc"'), lead_line(3), ""]
    drop(settings, "t1", "a.csv", export_of(lines))
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, 5)
    assert (load.lines_loaded, load.lines_blank, load.lines_quarantined) == (4, 1, 0)
    table = read_leads(settings, "t1")
    assert table is not None
    rows = {r["lead_id"]: r for r in table.to_pylist()}
    assert rows["L002"]["company"] == "Acme\nRobotics, Inc"
    assert rows["L002"]["_source_line"] == 3 and rows["L003"]["_source_line"] == 5


def test_a_garbled_file_accounts_for_every_line(settings):
    """Random damage of every kind: no line is lost, none is counted twice."""
    rng = random.Random(6)
    lines: list[str] = []
    for n in range(1, 400):
        damage = rng.random()
        if damage < 0.05:
            lines.append(lead_line(n, company='"stray'))
        elif damage < 0.08:
            lines.append(lead_line(n, company="nul\x00byte"))
        elif damage < 0.11:
            lines.append(lead_line(n, company='"two\nlines"'))
        elif damage < 0.13:
            lines.append("")
        elif damage < 0.15:
            lines.append(lead_line(n, email="nobody"))
        elif damage < 0.17:
            lines.append(lead_line(n, company="z" * 150_000))
        else:
            lines.append(lead_line(n))
    content = export_of(lines)
    data_lines = content.count("\n") - 1
    drop(settings, "t1", "a.csv", content)
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, data_lines)
    loaded = read_leads(settings, "t1")
    assert loaded is not None
    spans = {r["_source_line"] for r in loaded.to_pylist()}
    bad = [q["source_line"] for q in quarantined(settings, "t1")]
    assert len(bad) == len(set(bad)) and not spans & set(bad)
    assert load.rows_loaded + load.rows_quarantined == load.rows_in


def test_nul_and_control_characters_are_quarantined_with_file_and_line(settings):
    lines = [lead_line(1), lead_line(2, company="Nul\x00Corp"), lead_line(3, company="Bell\x07")]
    drop(settings, "t1", "a.csv", export_of(lines))
    load = ingest_crm_leads(settings, "t1")
    assert_every_line_accounted(load, 3)
    assert lead_ids(settings, "t1") == ["L001"]
    reasons = {q["source_line"]: q["reason"] for q in quarantined(settings, "t1")}
    assert reasons == {
        3: "control character U+0000 in column company",
        4: "control character U+0007 in column company",
    }


def materialize_export(settings: Settings, tenant: str, *, with_raw: bool = False):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tenants.name or "tenants", [tenant])
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    return materialize(
        [crm_export_leads, raw_tables] if with_raw else [crm_export_leads],
        selection=[AssetKey(["crm_export", "leads"]), AssetKey(["raw", "crm_export__leads"])]
        if with_raw
        else None,
        partition_key=tenant,
        instance=instance,
        resources={"bizos": BizosSettings(home=str(settings.home), database_url=url)},
    )


@pytest.mark.postgres
def test_a_nul_byte_is_quarantined_the_same_on_postgres(pg_settings, pg_url):
    lines = [lead_line(1), lead_line(2, company="Nul\x00Corp"), lead_line(3)]
    drop(pg_settings, "t1", "a.csv", export_of(lines))
    result = materialize_export(pg_settings, "t1", with_raw=True)
    assert result.success
    with psycopg.connect(pg_url) as conn:
        ids = [r[0] for r in conn.execute("select lead_id from raw.crm_export__leads order by 1")]
    assert ids == ["L001", "L003"]
    [q] = quarantined(pg_settings, "t1")
    assert (q["source_file"], q["source_line"]) == ("a.csv", 3) and "U+0000" in q["reason"]


def test_the_asset_reports_line_counts_and_skipped_files_in_its_metadata(settings):
    drop(settings, "t1", "a.csv", export_of([lead_line(1), '"broken', lead_line(3)]))
    drop(settings, "t1", "b.csv", "")
    result = materialize_export(settings, "t1")
    assert result.success
    [mat] = result.asset_materializations_for_node("crm_export__leads")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["rows_loaded"], meta["rows_quarantined"]) == (2, 1)
    assert (meta["lines_read"], meta["lines_loaded"], meta["lines_quarantined"]) == (3, 2, 1)
    assert meta["files_skipped"] == [
        {"path": "t1/crm/b.csv", "reason": "empty (an upload in progress?); read at a later run"}
    ]


def test_a_file_over_the_size_limit_is_quarantined_as_a_file_and_the_rest_loads(bizos_home):
    settings = get_settings(home=bizos_home, database_url=None, max_export_bytes=2000)
    drop(settings, "t1", "a.csv", export_of([lead_line(1)]))
    drop(settings, "t1", "b.csv", export_of([lead_line(n) for n in range(2, 40)]))
    load = ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001"]
    [q] = quarantined(settings, "t1")
    assert q["source_file"] == "b.csv" and q["source_line"] is None
    assert "over the 2,000-byte limit" in q["reason"] and "BIZOS_MAX_EXPORT_BYTES" in q["reason"]
    assert [f["path"] for f in load.files_quarantined] == ["b.csv"]


def test_an_empty_or_still_uploading_file_is_skipped_with_a_notice(settings, caplog):
    drop(settings, "t1", "a.csv", export_of([lead_line(1)]))
    drop(settings, "t1", "b.csv", "")
    drop(settings, "t1", "c.csv", export_of([lead_line(3)]), age=0)
    load = ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001"]
    assert [f["path"] for f in load.files_skipped] == ["t1/crm/b.csv", "t1/crm/c.csv"]
    assert "empty" in load.files_skipped[0]["reason"]
    assert "still uploading" in load.files_skipped[1]["reason"]
    assert "t1/crm/c.csv" in caplog.text
    settled = settings.model_copy(update={"inbox_settle_seconds": 0})
    ingest_crm_leads(settled, "t1")
    assert lead_ids(settings, "t1") == ["L001", "L003"]


def test_a_symlinked_export_is_refused_and_never_read(settings):
    acme = drop(settings, "acme", "export.csv", export_of([lead_line(1)]))
    drop(settings, "mallory", "mine.csv", export_of([lead_line(7)]))
    (settings.tenant_inbox("mallory") / "crm" / "steal.csv").symlink_to("../../acme/crm/export.csv")
    load = ingest_crm_leads(settings, "mallory")
    assert lead_ids(settings, "mallory") == ["L007"]
    assert load.files_skipped == [
        {"path": "mallory/crm/steal.csv", "reason": "a symlink, not followed"}
    ]
    hard = settings.tenant_inbox("mallory") / "crm" / "hard.csv"
    os.link(acme, hard)
    load = ingest_crm_leads(settings, "mallory")
    assert lead_ids(settings, "mallory") == ["L007"]
    assert "hard links" in load.files_skipped[0]["reason"]


@pytest.mark.parametrize("linked", ["tenant", "crm"])
def test_a_symlinked_tenant_or_export_folder_is_refused(settings, linked):
    drop(settings, "acme", "export.csv", export_of([lead_line(1)]))
    mallory = settings.tenant_inbox("mallory")
    if linked == "tenant":
        mallory.symlink_to("acme")
    else:
        mallory.mkdir()
        (mallory / "crm").symlink_to("../acme/crm")
    load = ingest_crm_leads(settings, "mallory")
    assert lead_ids(settings, "mallory") == []
    [notice] = load.files_skipped
    assert notice["path"].startswith("mallory") and "symlink" in notice["reason"]
    scan = scan_inbox(settings)
    assert scan.tenants == (["acme"] if linked == "tenant" else ["acme", "mallory"])


def test_inbox_folders_that_are_not_tenant_ids_are_reported_and_skipped(settings, caplog):
    for name in ("acme", "-dash", "Bad Tenant", "UPPER", "zeta_2"):
        (settings.inbox_dir / name / "crm").mkdir(parents=True)
    scan = scan_inbox(settings)
    assert scan.tenants == ["acme", "zeta_2"]
    assert sorted(n.path for n in scan.refused) == ["-dash", "Bad Tenant", "UPPER"]
    assert all("not a valid tenant id" in n.reason for n in scan.refused)
    assert tenants_with_inbox(settings) == ["acme", "zeta_2"]
    assert "Bad Tenant" in caplog.text


def test_the_inbox_sensor_starts_the_valid_tenants_only(settings):
    for name in ("acme", "-dash", "UPPER"):
        (settings.inbox_dir / name / "crm").mkdir(parents=True)
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"bizos": BizosSettings(home=str(settings.home))}
        )
        result = tenant_inboxes(context)
    assert [r.partition_key for r in result.run_requests] == ["acme"]


def test_the_vectorised_row_rules_agree_with_the_great_expectations_suite():
    frame = pl.DataFrame(
        {
            "lead_id": ["L1", None, "L3", "L4", "L5", "L6"],
            "email": ["a@b.co", "a@b.co", "n/a", None, "x y@b.co", "c@d.org"],
            "created_at": ["2026-01-01"] * 5 + [None],
            "status": ["new", " Qualified ", "maybe", "new", "lost", "converted"],
        }
    )
    vectorised = row_rule_failures(frame).to_list()
    gx = validate_crm_leads(frame.to_pandas().replace({float("nan"): None}))
    by_gx = [sorted(gx.row_failures.get(i, [])) for i in range(frame.height)]
    assert [sorted(v.split("; ")) if v else [] for v in vectorised] == by_gx
    assert vectorised[0] is None and by_gx[2] == sorted(
        ["email: expect_column_values_to_match_regex", "status: expect_column_values_to_be_in_set"]
    )
