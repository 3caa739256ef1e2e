"""CRM exports into the lake: bad files stop with a clear error, bad rows go to
quarantine, good rows are kept, and what was loaded before survives."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core.contracts.crm_export import REQUIRED_COLUMNS
from core.settings import Settings
from exports.crm_leads import ingest_crm_leads, read_leads, read_quarantine

HEADER = ",".join(REQUIRED_COLUMNS)


def lead_line(n: int, *, email: str | None = None, status: str = "new") -> str:
    email = email if email is not None else f"person{n}@firm{n}.com"
    return (
        f"L{n:03d},{email},First{n},Last{n},Firm {n},VP Sales,software,51-200,US,referral,"
        f"2026-10-{(n % 28) + 1:02d}T10:00:00Z,{status}"
    )


def drop(settings: Settings, tenant: str, name: str, content: str | bytes) -> Path:
    folder = settings.tenant_inbox(tenant) / "crm"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    settle(path)
    return path


def settle(path: Path) -> None:
    """Date a file back past the inbox's settle window, as a finished upload is."""
    past = time.time() - 60
    os.utime(path, (past, past), follow_symlinks=False)


def lead_ids(settings: Settings, tenant: str) -> list[str]:
    table = read_leads(settings, tenant)
    assert table is not None
    return sorted(table.column("lead_id").to_pylist())


def quarantined(settings: Settings, tenant: str) -> list[dict]:
    table = read_quarantine(settings, tenant)
    return [] if table is None else table.to_pylist()


def test_good_file_lands_with_custom_attributes_and_rerun_does_not_duplicate(settings):
    rows = [lead_line(n) + ",gold" for n in range(1, 6)]
    drop(settings, "t1", "a.csv", HEADER + ",tier\n" + "\n".join(rows) + "\n")
    first = ingest_crm_leads(settings, "t1")
    assert first.rows_loaded == 5 and first.rows_quarantined == 0
    again = ingest_crm_leads(settings, "t1")
    assert again.rows_loaded == 5
    table = read_leads(settings, "t1")
    assert table is not None and table.num_rows == 5
    assert json.loads(table.column("custom_attributes")[0].as_py()) == {"tier": "gold"}
    assert set(table.column("tenant_id").to_pylist()) == {"t1"}


def test_missing_required_column_quarantines_that_file_and_loads_the_others(settings):
    drop(settings, "t1", "a.csv", HEADER + "\n" + lead_line(1) + "\n")
    broken_header = HEADER.replace("email,", "")
    drop(settings, "t1", "b.csv", broken_header + "\nL9,F,L,C,T,I,S,US,web,2026-01-01,new\n")
    drop(settings, "t1", "c.csv", HEADER + "\n" + lead_line(3) + "\n")
    load = ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001", "L003"]
    assert load.files == ["a.csv", "c.csv"]
    [refused] = load.files_quarantined
    assert refused["path"] == "b.csv"
    assert "b.csv" in refused["reason"] and "'email'" in refused["reason"]
    [q] = quarantined(settings, "t1")
    assert q["source_file"] == "b.csv" and q["source_line"] is None
    assert "'email'" in q["reason"]


def test_bad_rows_are_quarantined_with_reason_file_and_line(settings):
    drop(settings, "t1", "a.csv", HEADER + "\n" + lead_line(1) + "\n")
    ingest_crm_leads(settings, "t1")
    content = "\n".join(
        [
            HEADER,
            lead_line(2),
            lead_line(3, email="not-an-email"),
            lead_line(4, status="maybe"),
            lead_line(5).replace("2026-10-06T10:00:00Z", "yesterday"),
            lead_line(6),
        ]
    )
    drop(settings, "t1", "b.csv", content + "\n")
    load = ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001", "L002", "L006"]
    assert load.rows_quarantined == 3
    bad = {(q["source_file"], q["source_line"]): q["reason"] for q in quarantined(settings, "t1")}
    assert set(bad) == {("b.csv", 3), ("b.csv", 4), ("b.csv", 5)}
    assert "email" in bad[("b.csv", 3)]
    assert "status" in bad[("b.csv", 4)]
    assert "created_at" in bad[("b.csv", 5)]


def test_wrong_encoding_quarantines_undecodable_rows_and_keeps_the_rest(settings):
    drop(settings, "t1", "a.csv", HEADER + "\n" + lead_line(1) + "\n")
    ingest_crm_leads(settings, "t1")
    latin1 = "\n".join([HEADER, lead_line(2), lead_line(3).replace("First3", "Zoë")]) + "\n"
    drop(settings, "t1", "b.csv", latin1.encode("latin-1"))
    ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001", "L002"]
    [q] = quarantined(settings, "t1")
    assert q["source_line"] == 3 and "UTF-8" in q["reason"]


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        ('L9,"x@y.com,Fir', "unreadable CSV"),  # cut inside a quoted field
        ("L9,x@y.com,Fir", "truncated row"),  # cut between fields
    ],
)
def test_file_truncated_mid_row_keeps_complete_rows(settings, tail, reason):
    drop(settings, "t1", "a.csv", HEADER + "\n" + lead_line(1) + "\n")
    ingest_crm_leads(settings, "t1")
    drop(settings, "t1", "b.csv", HEADER + "\n" + lead_line(2) + "\n" + tail)
    ingest_crm_leads(settings, "t1")
    assert lead_ids(settings, "t1") == ["L001", "L002"]
    [q] = quarantined(settings, "t1")
    assert q["source_file"] == "b.csv" and q["source_line"] == 3 and reason in q["reason"]


def test_same_lead_in_two_files_keeps_the_later_file(settings):
    drop(settings, "t1", "2026-10-01.csv", HEADER + "\n" + lead_line(1, status="new") + "\n")
    drop(settings, "t1", "2026-10-02.csv", HEADER + "\n" + lead_line(1, status="qualified") + "\n")
    load = ingest_crm_leads(settings, "t1")
    table = read_leads(settings, "t1")
    assert table is not None and table.column("status").to_pylist() == ["qualified"]
    assert load.duplicates_dropped == 1


def test_tenants_do_not_mix(settings):
    drop(settings, "t1", "a.csv", HEADER + "\n" + lead_line(1) + "\n")
    drop(settings, "t2", "a.csv", HEADER + "\n" + lead_line(2) + "\n" + lead_line(3) + "\n")
    ingest_crm_leads(settings, "t1")
    ingest_crm_leads(settings, "t2")
    assert lead_ids(settings, "t1") == ["L001"]
    assert lead_ids(settings, "t2") == ["L002", "L003"]
