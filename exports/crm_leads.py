"""CRM lead exports from a tenant's inbox into the lake, with a quarantine.

A tenant's partition is rebuilt from every export in its inbox on each run and
replaced atomically, so a re-run never duplicates and a failed run leaves the
previous partition as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from core.settings import Settings
from exports.crm_csv import ParsedExport, RejectedRow, parse_crm_export
from lake.files import partition_dir, read_partition, write_partition
from lake.quarantine import QUARANTINE_SCHEMA
from quality.crm_leads import validate_crm_leads

LEADS_SCHEMA = pa.schema(
    [
        ("tenant_id", pa.string()),
        ("lead_id", pa.string()),
        ("email", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("company", pa.string()),
        ("title", pa.string()),
        ("industry", pa.string()),
        ("company_size", pa.string()),
        ("country", pa.string()),
        ("source", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        ("custom_attributes", pa.string()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass
class LeadsLoad:
    """What one load did, for Dagster metadata and the CLI."""

    tenant_id: str
    files: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0
    bytes_written: int = 0
    lake_path: Path | None = None
    quarantine_path: Path | None = None
    suite: dict[str, object] = field(default_factory=dict)


def leads_path(settings: Settings, tenant_id: str) -> Path:
    return (
        partition_dir(settings.lake_dir, "crm_export", "leads", tenant=tenant_id) / "leads.parquet"
    )


def quarantine_path(settings: Settings, tenant_id: str) -> Path:
    return (
        partition_dir(settings.quarantine_dir, "crm_export", "leads", tenant=tenant_id)
        / "quarantine.parquet"
    )


def export_files(settings: Settings, tenant_id: str) -> list[Path]:
    """The tenant's exports, oldest name first: a later file's row wins a tie."""
    return sorted((settings.tenant_inbox(tenant_id) / "crm").glob("*.csv"))


def tenants_with_inbox(settings: Settings) -> list[str]:
    if not settings.inbox_dir.exists():
        return []
    return sorted(
        p.name for p in settings.inbox_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def ingest_crm_leads(settings: Settings, tenant_id: str) -> LeadsLoad:
    """Parse, validate, de-duplicate and land one tenant's CRM exports."""
    now = datetime.now(UTC)
    load = LeadsLoad(tenant_id=tenant_id)
    parsed = ParsedExport()
    # Parse every file first: one file with a broken header stops the load
    # before anything is written, so the lake keeps its previous partition.
    for path in export_files(settings, tenant_id):
        one = parse_crm_export(path, tenant_id=tenant_id, ingested_at=now)
        parsed.rows.extend(one.rows)
        parsed.rejected.extend(one.rejected)
        load.files.append(path.name)
    load.rows_in = len(parsed.rows) + len(parsed.rejected)

    good, failed = split_by_suite(parsed.rows, load)
    rejected = parsed.rejected + failed
    good = latest_per_lead(good, load)

    table = pa.Table.from_pylist(good, schema=LEADS_SCHEMA)
    load.lake_path = leads_path(settings, tenant_id)
    load.bytes_written = write_partition(table, load.lake_path)
    load.quarantine_path = quarantine_path(settings, tenant_id)
    write_partition(quarantine_table(tenant_id, rejected, now), load.quarantine_path)
    load.rows_loaded = table.num_rows
    load.rows_quarantined = len(rejected)
    return load


def split_by_suite(
    rows: list[dict[str, object]], load: LeadsLoad
) -> tuple[list[dict[str, object]], list[RejectedRow]]:
    """Rows that pass the quality suite, and the others with the reason."""
    if not rows:
        return [], []
    frame = pd.DataFrame.from_records(rows)
    outcome = validate_crm_leads(frame)
    load.suite = {"success": outcome.success, "expectations": outcome.expectations}
    good: list[dict[str, object]] = []
    bad: list[RejectedRow] = []
    for index, row in enumerate(rows):
        reasons = outcome.row_failures.get(index)
        if reasons:
            raw = {k: v for k, v in row.items() if not k.startswith("_")}
            bad.append(
                RejectedRow(
                    source_file=str(row["_source_file"]),
                    source_line=int(row["_source_line"]),  # type: ignore[call-overload]
                    reason="failed " + "; ".join(reasons),
                    raw_record=json.dumps(raw, default=str, sort_keys=True),
                )
            )
        else:
            good.append(row)
    return good, bad


def latest_per_lead(rows: list[dict[str, object]], load: LeadsLoad) -> list[dict[str, object]]:
    """One row per lead_id: the last one read (files in name order, then lines)."""
    latest: dict[object, dict[str, object]] = {}
    for row in rows:
        latest[row["lead_id"]] = row
    load.duplicates_dropped = len(rows) - len(latest)
    return list(latest.values())


def quarantine_table(tenant_id: str, rejected: list[RejectedRow], at: datetime) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "tenant_id": tenant_id,
                "source": "crm_export",
                "source_file": r.source_file,
                "source_line": r.source_line,
                "reason": r.reason,
                "raw_record": r.raw_record,
                "quarantined_at": at,
            }
            for r in rejected
        ],
        schema=QUARANTINE_SCHEMA,
    )


def read_leads(settings: Settings, tenant_id: str) -> pa.Table | None:
    return read_partition(leads_path(settings, tenant_id))


def read_quarantine(settings: Settings, tenant_id: str) -> pa.Table | None:
    return read_partition(quarantine_path(settings, tenant_id))
