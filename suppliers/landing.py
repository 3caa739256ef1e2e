"""Landing a tenant's supplier inputs in the lake, with a quarantine.

Each table's tenant partition is rebuilt from everything in the inbox on each run
and replaced atomically (lake/files.py), so a re-run never duplicates and a
failed run leaves the previous partition. A file that cannot be read goes to the
quarantine whole, a bad row goes there alone, and the rest of the batch lands.
The inbox is untrusted (exports/inbox.py): no links followed, files still being
written left for the next run, files over ``max_export_bytes`` refused unread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import pyarrow as pa

from core.contracts.suppliers import (
    LAKE_TABLES,
    POLICY_SCHEMA,
    REQUIRED_DOCUMENTS_SCHEMA,
    REVIEW_DECISIONS_SCHEMA,
    SOURCE,
)
from core.settings import Settings
from exports.inbox import InboxChanged, open_export, tenant_exports
from lake.files import (
    LakePath,
    lake_root,
    partition_dir,
    quarantine_root,
    read_partition,
    write_partition,
)
from lake.quarantine import QUARANTINE_SCHEMA
from suppliers.inbox_files import (
    SCREENING_SUFFIXES,
    FileRows,
    SupplierFileError,
    list_name,
    read_purchase_orders,
    read_screening,
    read_suppliers,
)
from suppliers.policy import SupplierPolicy

log = logging.getLogger(__name__)

SUPPLIERS_FILE = "suppliers.csv"
ORDERS_FILE = "purchase_orders.csv"
SCREENING_FOLDER = "screening"


def lake_path(settings: Settings, table: str, tenant_id: str) -> LakePath:
    if table not in LAKE_TABLES:
        raise ValueError(f"not a supplier lake table: {table}")
    return partition_dir(lake_root(settings), SOURCE, table, tenant=tenant_id) / f"{table}.parquet"


def quarantine_path(settings: Settings, table: str, tenant_id: str) -> LakePath:
    return (
        partition_dir(quarantine_root(settings), SOURCE, table, tenant=tenant_id)
        / "quarantine.parquet"
    )


def read_table(settings: Settings, table: str, tenant_id: str) -> pa.Table:
    """The tenant's partition of a supplier lake table (empty when never landed)."""
    found = read_partition(lake_path(settings, table, tenant_id))
    return found if found is not None else LAKE_TABLES[table].empty_table()


@dataclass
class TableLoad:
    """What one table's landing did, for Dagster metadata and the CLI."""

    table: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    rows_quarantined: int = 0
    files_quarantined: list[dict[str, str]] = field(default_factory=list)
    files_skipped: list[dict[str, str]] = field(default_factory=list)


Reader = Callable[[BinaryIO, str], FileRows]


def _land_files(
    settings: Settings,
    tenant_id: str,
    table: str,
    *,
    folder: str,
    names: Callable[[str], bool],
    read: Reader,
    extra: Callable[[str], dict[str, Any]] = lambda name: {},
    now: datetime,
) -> TableLoad:
    load = TableLoad(table)
    listing = tenant_exports(settings, tenant_id, folder=folder, names=names)
    shown = (lambda n: f"{folder}/{n}") if folder else (lambda n: n)
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []

    def reject(file: str, line: int | None, reason: str, raw: str) -> None:
        rejects.append(
            {
                "tenant_id": tenant_id,
                "source": f"{SOURCE}/{table}",
                "source_file": file,
                "source_line": line,
                "reason": reason,
                "raw_record": raw,
                "quarantined_at": now,
            }
        )

    for notice in listing.skipped:
        load.files_skipped.append({"path": notice.path, "reason": notice.reason})
    for big in listing.too_large:
        reason = (
            f"file of {big.size:,} bytes is over the {settings.max_export_bytes:,}-byte "
            "limit (BIZOS_MAX_EXPORT_BYTES); not read"
        )
        load.files_quarantined.append({"path": shown(big.name), "reason": reason})
        reject(shown(big.name), None, reason, json.dumps({"bytes": big.size}))
    for listed in listing.files:
        try:
            with open_export(settings, tenant_id, listed, folder=folder) as fh:
                found = read(fh, listed.name)
        except SupplierFileError as exc:
            load.files_quarantined.append({"path": shown(listed.name), "reason": str(exc)})
            reject(shown(listed.name), None, str(exc), json.dumps({"bytes": listed.size}))
            continue
        except InboxChanged as exc:
            load.files_skipped.append({"path": shown(listed.name), "reason": str(exc)})
            continue
        load.files.append(shown(listed.name))
        for bad in found.rejected:
            reject(shown(listed.name), bad.line, bad.reason, bad.raw)
        added = extra(listed.name)
        for row in found.rows:
            rows.append(
                {
                    "tenant_id": tenant_id,
                    **added,
                    **row,
                    "_source_file": shown(listed.name),
                    "_ingested_at": now,
                }
            )
    schema = LAKE_TABLES[table]
    write_partition(
        pa.Table.from_pylist(rows, schema=schema), lake_path(settings, table, tenant_id)
    )
    write_partition(
        pa.Table.from_pylist(rejects, schema=QUARANTINE_SCHEMA),
        quarantine_path(settings, table, tenant_id),
    )
    load.rows, load.rows_quarantined = len(rows), len(rejects)
    for skipped in load.files_skipped:
        log.warning("tenant %s: %s skipped: %s", tenant_id, skipped["path"], skipped["reason"])
    for refused in load.files_quarantined:
        log.warning("tenant %s: %s quarantined: %s", tenant_id, refused["path"], refused["reason"])
    return load


def land_suppliers(settings: Settings, tenant_id: str, *, now: datetime) -> TableLoad:
    return _land_files(
        settings,
        tenant_id,
        "suppliers",
        folder="",
        names=lambda n: n == SUPPLIERS_FILE,
        read=read_suppliers,
        now=now,
    )


def land_purchase_orders(settings: Settings, tenant_id: str, *, now: datetime) -> TableLoad:
    return _land_files(
        settings,
        tenant_id,
        "purchase_orders",
        folder="",
        names=lambda n: n == ORDERS_FILE,
        read=read_purchase_orders,
        now=now,
    )


def land_screening_entries(settings: Settings, tenant_id: str, *, now: datetime) -> TableLoad:
    return _land_files(
        settings,
        tenant_id,
        "screening_entries",
        folder=SCREENING_FOLDER,
        names=lambda n: n.lower().endswith(SCREENING_SUFFIXES) and bool(list_name(n)),
        read=read_screening,
        extra=lambda name: {"list_name": list_name(name)},
        now=now,
    )


def land_policy(
    settings: Settings, tenant_id: str, policy: SupplierPolicy, *, now: datetime
) -> TableLoad:
    """The tenant's validated policy as the two tables the risk models join."""
    row = {
        "tenant_id": tenant_id,
        "config_version": policy.config_version,
        "sanctions_threshold": policy.sanctions_threshold,
        "expiry_warning_days": ";".join(str(d) for d in sorted(policy.expiry_warning_days)),
        "tier_medium": policy.tiers.medium,
        "tier_high": policy.tiers.high,
        "tier_critical": policy.tiers.critical,
        "review_days_critical": policy.review_days.critical,
        "review_days_high": policy.review_days.high,
        "review_days_medium": policy.review_days.medium,
        "rereview_days": policy.review_days.rereview,
        "min_orders": policy.min_orders,
        "concentration_share": policy.concentration_share,
        "as_of": policy.as_of,
        "_ingested_at": now,
    }
    documents = [
        {
            "tenant_id": tenant_id,
            "doc_type": d.doc_type,
            "check_name": d.check_name,
            "check_number": d.check_number,
            "_ingested_at": now,
        }
        for d in policy.required_documents
    ]
    write_partition(
        pa.Table.from_pylist([row], schema=POLICY_SCHEMA),
        lake_path(settings, "policy", tenant_id),
    )
    write_partition(
        pa.Table.from_pylist(documents, schema=REQUIRED_DOCUMENTS_SCHEMA),
        lake_path(settings, "required_documents", tenant_id),
    )
    load = TableLoad("policy", rows=1)
    return load


def land_review_decisions(
    settings: Settings, tenant_id: str, decisions: list[dict[str, Any]], *, now: datetime
) -> TableLoad:
    """The reviewers' decisions, as the ops database holds them, for dbt to read."""
    rows = [{**d, "tenant_id": tenant_id, "_ingested_at": now} for d in decisions]
    write_partition(
        pa.Table.from_pylist(rows, schema=REVIEW_DECISIONS_SCHEMA),
        lake_path(settings, "review_decisions", tenant_id),
    )
    return TableLoad("review_decisions", rows=len(rows))


def utc_now() -> datetime:
    return datetime.now(UTC)
