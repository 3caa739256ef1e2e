"""Deterministic supplier inputs for demo tenants: records, a screening list, orders.

``generate_supplier_inbox(inbox_dir, tenant)`` writes, under ``<inbox>/<tenant>/``:

- ``suppliers.csv``: suppliers with aliases, countries and the insurance policy
  number on record (``certificate_of_insurance_number``, which the policy check
  compares with the document's);
- ``screening/demo_sanctions.jsonl``: a small FollowTheMoney list with one
  planted match (a supplier's name in another script and legal form) and
  unrelated entries;
- ``purchase_orders.csv``: orders per supplier, some late, some with rejected
  units, one supplier taking most of the spend.

Documents are the supplier_docs samples' job (``supplier_docs/samples.py``); the
names and policy numbers here are what they should carry (``GeneratedSuppliers``).
Same arguments, same bytes.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

NAMES = (
    ("Harbour Components Ltd", "GB"),
    ("Nordic Fasteners AB", "SE"),
    ("Blue Ocean Foods S.A.", "ES"),
    ("Delta Plastics GmbH", "DE"),
    ("Sunrise Textiles Pvt Ltd", "IN"),
    ("Maple Packaging Inc.", "CA"),
    ("Andes Copper S.A.", "CL"),
    ("Kestrel Logistics LLC", "US"),
    ("Shenzhen Hongda Electronics Co., Ltd.", "CN"),
    ("Romashka LLC", "RU"),
)
PLANTED = "Romashka LLC"
"""The supplier the list names (as ООО «Ромашка»): a sanctions match to review."""


@dataclass
class GeneratedSuppliers:
    tenant_id: str
    suppliers: list[dict[str, str]] = field(default_factory=list)
    planted_match: str = ""
    orders: int = 0


def _settle(*paths: Path) -> None:
    # Complete files: dated back past the inbox's settle window.
    settled = time.time() - 60
    for path in paths:
        os.utime(path, (settled, settled))


def generate_supplier_inbox(
    inbox_dir: Path,
    tenant_id: str,
    *,
    seed: int = 7,
    as_of: datetime = datetime(2026, 11, 1, tzinfo=UTC),
) -> GeneratedSuppliers:
    rng = random.Random(f"{seed}:{tenant_id}:suppliers")
    out = GeneratedSuppliers(tenant_id)
    tenant_dir = inbox_dir / tenant_id
    (tenant_dir / "screening").mkdir(parents=True, exist_ok=True)

    suppliers_path = tenant_dir / "suppliers.csv"
    with suppliers_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["supplier_id", "legal_name", "aliases", "country",
             "certificate_of_insurance_number", "contact_email"]
        )  # fmt: skip
        for i, (name, country) in enumerate(NAMES, start=1):
            supplier_id = f"SUP-{i:03d}"
            policy = f"POL-{rng.randrange(100000, 999999)}"
            alias = name.split()[0] + " " + name.split()[1] if len(name.split()) > 2 else ""
            row = {
                "supplier_id": supplier_id,
                "legal_name": name,
                "aliases": alias,
                "country": country,
                "certificate_of_insurance_number": policy,
                "contact_email": f"quality@{name.split()[0].lower()}.example",
            }
            writer.writerow(row.values())
            out.suppliers.append(row)
            if name == PLANTED:
                out.planted_match = supplier_id

    list_path = tenant_dir / "screening" / "demo_sanctions.jsonl"
    entries = [
        {"id": "demo-1", "schema": "Company",
         "properties": {"name": ["ООО «Ромашка»"], "alias": ["Romashka Trading House"],
                        "country": ["ru"]}},
        {"id": "demo-2", "schema": "Person",
         "properties": {"name": ["Ivan Petrovich Sidorov"], "country": ["ru"]}},
        {"id": "demo-3", "schema": "Company",
         "properties": {"name": ["Golden Crescent General Trading FZE"], "country": ["ae"]}},
        {"id": "demo-4", "schema": "Company",
         "properties": {"name": ["Pyongyang Ocean Shipping Co"], "country": ["kp"]}},
    ]  # fmt: skip
    list_path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8"
    )

    orders_path = tenant_dir / "purchase_orders.csv"
    with orders_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["po_id", "supplier_id", "ordered_at", "promised_at", "received_at", "amount",
             "currency", "quantity", "rejected_quantity"]
        )  # fmt: skip
        for i, row in enumerate(out.suppliers):
            late_share = 0.5 if i in (1, 4) else 0.05
            defect_share = 0.08 if i == 4 else 0.005
            big = i == 0  # most of the tenant's spend
            for n in range(rng.randint(4, 9)):
                ordered = as_of - timedelta(days=rng.randint(20, 330))
                promised = ordered + timedelta(days=rng.randint(7, 21))
                late = rng.random() < late_share
                received = promised + timedelta(days=rng.randint(1, 15) if late else -1)
                quantity = rng.randint(50, 500)
                writer.writerow(
                    [
                        f"PO-{tenant_id[:3].upper()}-{i:02d}{n:02d}",
                        row["supplier_id"],
                        ordered.date().isoformat(),
                        promised.date().isoformat(),
                        received.date().isoformat() if received < as_of else "",
                        round(rng.uniform(20_000, 60_000) if big else rng.uniform(500, 6_000), 2),
                        "EUR",
                        quantity,
                        round(quantity * defect_share * rng.uniform(0.5, 1.5)),
                    ]
                )
                out.orders += 1
    _settle(suppliers_path, list_path, orders_path)
    return out
