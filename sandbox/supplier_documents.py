"""Supplier documents for the demo tenants, as suppliers send them.

``generate_supplier_documents(inbox_dir, generated, today)`` writes, under
``<inbox>/<tenant>/suppliers/<supplier_id>/``, the documents the default policy
requires (``config/suppliers/default.yaml``: a certificate of insurance, a
quality certificate and a tax form), each rendered by ``supplier_docs.samples``
with what ``sandbox.supplier_inbox`` put on record, and these departures, so
the demo's risk shows every case:

- ``SUP-002``: insurance expiring within 30 days of ``today``;
- ``SUP-003``: insurance expired;
- ``SUP-004``: insurance as a scanned PDF (read by OCR);
- ``SUP-005``: a quality certificate cut short in transfer (corrupt: quarantined,
  so the certificate counts as missing);
- ``SUP-006``: no tax form;
- ``SUP-007``: an insurance policy number other than the one on record.

Dates are relative to ``today`` so "expiring" stays true whenever the demo runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sandbox.supplier_inbox import GeneratedSuppliers
from supplier_docs.samples import DateStyle, SampleDocument, Variant, render

INSURERS = ("Harbor Mutual Insurance Co.", "Atlas Specialty Underwriters", "Northwind Assurance")
CERTIFIERS = ("Bureau Certification Ltd", "TUV Quality Services", "Global Registrar Inc.")


@dataclass
class GeneratedDocuments:
    tenant_id: str
    files: list[Path] = field(default_factory=list)
    cases: dict[str, str] = field(default_factory=dict)
    """supplier_id -> the departure planted for it."""


def generate_supplier_documents(
    inbox_dir: Path, generated: GeneratedSuppliers, *, today: date
) -> GeneratedDocuments:
    out = GeneratedDocuments(generated.tenant_id)
    root = inbox_dir / generated.tenant_id / "suppliers"
    for i, supplier in enumerate(generated.suppliers):
        sid, name = supplier["supplier_id"], supplier["legal_name"]
        folder = root / sid
        policy = supplier["certificate_of_insurance_number"]
        coi_expiry = today + timedelta(days=200 + 7 * i)
        coi_variant = Variant.TEXT_PDF
        if sid == "SUP-002":
            coi_expiry, out.cases[sid] = today + timedelta(days=12), "insurance expiring in 12 days"
        elif sid == "SUP-003":
            coi_expiry, out.cases[sid] = today - timedelta(days=20), "insurance expired"
        elif sid == "SUP-004":
            coi_variant, out.cases[sid] = Variant.SCANNED_PDF, "insurance scanned (OCR)"
        elif sid == "SUP-007":
            policy, out.cases[sid] = "POL-000001", "policy number differs from the record"
        coi = SampleDocument(
            kind="certificate_of_insurance",
            legal_name=name,
            issuer=INSURERS[i % len(INSURERS)],
            number=policy,
            issue_date=coi_expiry - timedelta(days=365),
            expiry_date=coi_expiry,
            coverage_amount=Decimal(1_000_000 + 250_000 * (i % 4)),
            currency="USD" if i % 2 else "EUR",
            date_style=(DateStyle.US, DateStyle.EU, DateStyle.LONG)[i % 3],
        )
        out.files.append(render(coi, folder / "insurance", coi_variant))

        iso = SampleDocument(
            kind="quality_certificate",
            legal_name=name,
            issuer=CERTIFIERS[i % len(CERTIFIERS)],
            number=f"QMS-{1000 + 37 * i}",
            issue_date=today - timedelta(days=400),
            expiry_date=today + timedelta(days=700),
            date_style=DateStyle.ISO,
        )
        iso_variant = Variant.TEXT_PDF
        if sid == "SUP-005":
            iso_variant, out.cases[sid] = Variant.CORRUPT, "quality certificate corrupt"
        out.files.append(render(iso, folder / "iso9001", iso_variant))

        if sid == "SUP-006":
            out.cases[sid] = "no tax form"
        else:
            w9 = SampleDocument(
                kind="tax_form",
                legal_name=name,
                issuer="Internal Revenue Service",
                number=f"{10 + i}-{4_000_000 + 1_337 * i}",
                issue_date=today - timedelta(days=90),
                date_style=DateStyle.US,
            )
            out.files.append(render(w9, folder / "w9", Variant.TEXT_PDF))
    # Complete uploads: dated back past the inbox's settle window.
    settled = time.time() - 60
    for path in out.files:
        os.utime(path, (settled, settled))
    return out
