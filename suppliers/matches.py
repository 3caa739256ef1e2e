"""A tenant's screening run: its suppliers against its lists, landed for dbt.

Reads the landed suppliers, list entries and review decisions, screens every
supplier name and alias (suppliers/screening.py) leaving out the pairs a reviewer
ruled "not the same", and replaces the tenant's ``suppliers/screening_matches``
partition. The risk models decide which matches count (the tenant's threshold).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from core.contracts.suppliers import SCREENING_MATCHES_SCHEMA
from core.settings import Settings
from lake.files import write_partition
from suppliers.landing import lake_path, read_table
from suppliers.reviews import not_same_pairs
from suppliers.screening import ListEntry, ScreeningIndex, Supplier, screen_suppliers


@dataclass(frozen=True)
class ScreeningRun:
    suppliers: int
    entries: int
    matches: int
    suppressed: int


def _split(text: str | None, sep: str = ";") -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(sep) if p)


def list_entries(table: pa.Table) -> list[ListEntry]:
    columns = {n: table.column(n).to_pylist() for n in ("list_name", "entry_id", "name")}
    aliases = table.column("aliases").to_pylist()
    countries = table.column("countries").to_pylist()
    return [
        ListEntry(
            list_name=columns["list_name"][i],
            entry_id=columns["entry_id"][i],
            name=columns["name"][i],
            aliases=tuple(json.loads(aliases[i] or "[]")),
            countries=_split(countries[i]),
        )
        for i in range(table.num_rows)
    ]


def supplier_records(table: pa.Table) -> list[Supplier]:
    return [
        Supplier(
            supplier_id=row["supplier_id"],
            legal_name=row["legal_name"],
            aliases=_split(row["aliases"]),
            country=row["country"],
        )
        for row in table.select(["supplier_id", "legal_name", "aliases", "country"]).to_pylist()
    ]


def screen_tenant(
    settings: Settings, tenant_id: str, *, run_id: str, now: datetime
) -> ScreeningRun:
    suppliers = supplier_records(read_table(settings, "suppliers", tenant_id))
    entries = list_entries(read_table(settings, "screening_entries", tenant_id))
    decisions = read_table(settings, "review_decisions", tenant_id).to_pylist()
    suppressed = not_same_pairs(decisions)
    matches = screen_suppliers(ScreeningIndex(entries), suppliers, suppressed=suppressed)
    rows = [
        {
            "tenant_id": tenant_id,
            "supplier_id": m.supplier_id,
            "supplier_name": m.supplier_name,
            "list_name": m.list_name,
            "entry_id": m.entry_id,
            "entry_name": m.entry_name,
            "matched_name": m.matched_name,
            "score": m.score,
            "country_agrees": m.country_agrees,
            "_run_id": run_id,
            "_ingested_at": now,
        }
        for m in matches
    ]
    write_partition(
        pa.Table.from_pylist(rows, schema=SCREENING_MATCHES_SCHEMA),
        lake_path(settings, "screening_matches", tenant_id),
    )
    return ScreeningRun(len(suppliers), len(entries), len(rows), len(suppressed))
