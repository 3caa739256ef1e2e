"""Landing a tenant's price lists and sourcing assumptions in the lake, with a quarantine.

The tenant's ``price_lists/items`` partition is rebuilt from every file in
``inbox/<tenant>/price_lists/`` on each run and replaced atomically
(lake/files.py), so a re-run never duplicates and a failed run leaves the
previous partition; its key is (file, supplier_id, supplier_sku). A file that
cannot be read goes to the quarantine whole, a bad row alone with its line, and
the rest lands. The inbox is untrusted (exports/inbox.py): no links followed,
empty files and files still being written left for a later run, files over
``max_export_bytes`` refused unread.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from core.contracts.price_lists import ASSUMPTIONS_SCHEMA, ITEMS_SCHEMA, LAKE_TABLES, SOURCE
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
from sourcing.assumptions import SourcingAssumptions
from sourcing.price_list_files import SUFFIXES, PriceListFileError, read_price_list

log = logging.getLogger(__name__)

INBOX_FOLDER = "price_lists"
"""A tenant's price lists live in ``<inbox>/<tenant>/price_lists/*.csv|*.xlsx``."""


def lake_path(settings: Settings, table: str, tenant_id: str) -> LakePath:
    if table not in LAKE_TABLES:
        raise ValueError(f"not a price-list lake table: {table}")
    return partition_dir(lake_root(settings), SOURCE, table, tenant=tenant_id) / f"{table}.parquet"


def quarantine_path(settings: Settings, tenant_id: str) -> LakePath:
    return (
        partition_dir(quarantine_root(settings), SOURCE, "items", tenant=tenant_id)
        / "quarantine.parquet"
    )


def read_items(settings: Settings, tenant_id: str) -> pa.Table:
    """The tenant's landed price-list rows (empty when never landed)."""
    found = read_partition(lake_path(settings, "items", tenant_id))
    return found if found is not None else ITEMS_SCHEMA.empty_table()


def read_quarantined(settings: Settings, tenant_id: str) -> pa.Table:
    found = read_partition(quarantine_path(settings, tenant_id))
    return found if found is not None else QUARANTINE_SCHEMA.empty_table()


@dataclass
class PriceListLoad:
    """What one landing did, for Dagster metadata and the CLI."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    rows_quarantined: int = 0
    files_quarantined: list[dict[str, str]] = field(default_factory=list)
    files_skipped: list[dict[str, str]] = field(default_factory=list)


def land_price_lists(
    settings: Settings, tenant_id: str, assumptions: SourcingAssumptions, *, now: datetime
) -> PriceListLoad:
    load = PriceListLoad()
    listing = tenant_exports(
        settings, tenant_id, folder=INBOX_FOLDER, names=lambda n: n.lower().endswith(SUFFIXES)
    )
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []

    def reject(file: str, line: int | None, reason: str, raw: str) -> None:
        rejects.append(
            {
                "tenant_id": tenant_id,
                "source": f"{SOURCE}/items",
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
        shown = f"{INBOX_FOLDER}/{big.name}"
        reason = (
            f"file of {big.size:,} bytes is over the {settings.max_export_bytes:,}-byte "
            "limit (BIZOS_MAX_EXPORT_BYTES); not read"
        )
        load.files_quarantined.append({"path": shown, "reason": reason})
        reject(shown, None, reason, json.dumps({"bytes": big.size}))
    for listed in listing.files:
        shown = f"{INBOX_FOLDER}/{listed.name}"
        try:
            with open_export(settings, tenant_id, listed, folder=INBOX_FOLDER) as fh:
                found = read_price_list(fh, listed.name, assumptions.currencies)
        except PriceListFileError as exc:
            load.files_quarantined.append({"path": shown, "reason": str(exc)})
            reject(shown, None, str(exc), json.dumps({"bytes": listed.size}))
            continue
        except InboxChanged as exc:
            load.files_skipped.append({"path": shown, "reason": str(exc)})
            continue
        load.files.append(shown)
        for bad in found.rejected:
            reject(shown, bad.line, bad.reason, bad.raw)
        for row in found.rows:
            rows.append({"tenant_id": tenant_id, **row, "_source_file": shown, "_ingested_at": now})
    write_partition(
        pa.Table.from_pylist(rows, schema=ITEMS_SCHEMA), lake_path(settings, "items", tenant_id)
    )
    write_partition(
        pa.Table.from_pylist(rejects, schema=QUARANTINE_SCHEMA),
        quarantine_path(settings, tenant_id),
    )
    load.rows, load.rows_quarantined = len(rows), len(rejects)
    for skipped in load.files_skipped:
        log.warning("tenant %s: %s skipped: %s", tenant_id, skipped["path"], skipped["reason"])
    for refused in load.files_quarantined:
        log.warning("tenant %s: %s quarantined: %s", tenant_id, refused["path"], refused["reason"])
    return load


def land_assumptions(
    settings: Settings, tenant_id: str, assumptions: SourcingAssumptions, *, now: datetime
) -> int:
    """The tenant's assumptions as rows dbt joins: one per cost currency."""
    rows = [
        {
            "tenant_id": tenant_id,
            "config_version": assumptions.config_version,
            "marketplace_id": assumptions.marketplace_id,
            "currency": assumptions.currency,
            "cost_currency": code,
            "fx_rate": assumptions.rate(code),
            "freight_per_kg": assumptions.freight_per_kg,
            "duty_rate": assumptions.duty_rate,
            "min_offer_days": assumptions.min_offer_days,
            "_ingested_at": now,
        }
        for code in sorted(assumptions.currencies)
    ]
    write_partition(
        pa.Table.from_pylist(rows, schema=ASSUMPTIONS_SCHEMA),
        lake_path(settings, "assumptions", tenant_id),
    )
    return len(rows)
