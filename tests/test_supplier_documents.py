"""Supplier documents, read for real: PDFs, scans, images and text files generated
by ``supplier_docs.samples``, dropped into a tenant's inbox and read by the
landing code, the Dagster asset and dbt's staging models.

One batch is read once for the module (OCR is the expensive part: two scanned
pages); the tests look at what it landed. The LLM extractor talks to a local
HTTP server that answers in the chat-completions shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize
from fpdf import FPDF
from pydantic import SecretStr

import credentials
from assets.partitions import tenants
from assets.resources import BizosSettings
from assets.supplier_docs import (
    DOCUMENTS_KEY,
    FIELDS_KEY,
    supplier_docs_read,
    supplier_document_arrivals,
)
from core.contracts.supplier_docs import DOCUMENT_FIELDS_SCHEMA, DOCUMENTS_SCHEMA
from core.settings import Settings, get_settings
from credentials import generate_master_key
from pipelines.definitions import build_definitions
from supplier_docs.extraction import RulesExtractor
from supplier_docs.landing import (
    DocumentsLoad,
    documents_path,
    fields_path,
    quarantine_path,
    read_supplier_documents,
)
from supplier_docs.llm import LlmError, LlmExtractor, tenant_extractor
from supplier_docs.reading import Rejected, read_document
from supplier_docs.samples import DateStyle, SampleDocument, Variant, render, render_bytes
from supplier_docs.values import find_date, find_money
from tests.test_dbt_project import dbt_build
from warehouse.lake_tables import lake_tables
from warehouse.raw_tables import load_tenant

TENANT = "acme"
LATER = time.time() + 3600
"""``now`` for the inbox listing: every file has settled."""

COI = SampleDocument(
    "certificate_of_insurance",
    legal_name="Northwind Traders Ltd",
    issuer="Harbor Mutual Insurance Co",
    number="GL-2024-88123",
    issue_date=date(2026, 4, 1),
    expiry_date=date(2027, 3, 31),
    coverage_amount=Decimal("2000000"),
    currency="USD",
    date_style=DateStyle.US,
)
W9 = SampleDocument(
    "tax_form",
    legal_name="Northwind Traders Ltd",
    issuer="Internal Revenue Service",
    number="12-3456789",
    issue_date=date(2026, 3, 2),
    date_style=DateStyle.ISO,
)
ISO_CERT = SampleDocument(
    "quality_certificate",
    legal_name="Contoso Components GmbH",
    issuer="Bureau Veritas Certification",
    number="QMS-4411-2025",
    issue_date=date(2025, 2, 14),
    expiry_date=date(2028, 2, 13),
    date_style=DateStyle.EU,
)
LICENCE = SampleDocument(
    "business_licence",
    legal_name="Contoso Components GmbH",
    issuer="City of Springfield",
    number="BL-77310",
    issue_date=date(2026, 1, 1),
    expiry_date=date(2026, 12, 31),
    date_style=DateStyle.LONG,
)
BANK = SampleDocument(
    "bank_letter",
    legal_name="Litware Trading LLC",
    issuer="First Harbor Bank",
    number="0045-7781-2210",
    issue_date=date(2026, 5, 20),
    date_style=DateStyle.MONTH_FIRST,
)
SCANNED_COI = SampleDocument(
    "certificate_of_insurance",
    legal_name="Litware Trading LLC",
    issuer="Allianz Global Risks",
    number="EU-GL-55102",
    issue_date=date(2026, 6, 1),
    expiry_date=date(2027, 5, 31),
    coverage_amount=Decimal("1500000"),
    currency="EUR",
    date_style=DateStyle.EU,
)

GOOD = {
    "suppliers/SUP-A/coi.pdf": (COI, Variant.TEXT_PDF),
    "suppliers/SUP-A/w9.pdf": (W9, Variant.TEXT_PDF),
    "suppliers/SUP-B/iso9001.png": (ISO_CERT, Variant.PNG),
    "suppliers/SUP-B/licence.pdf": (LICENCE, Variant.TEXT_PDF),
    "suppliers/SUP-C/bank.txt": (BANK, Variant.TEXT),
    # a broker's typed cover letter, then the scanned certificate on page 2
    "suppliers/SUP-C/coi-scan.pdf": (SCANNED_COI, Variant.SCANNED_WITH_COVER),
}
BAD = {
    "suppliers/SUP-D/truncated.pdf": "corrupt",
    "suppliers/SUP-D/locked.pdf": "encrypted",
    "suppliers/SUP-D/blank.pdf": "empty",
    "suppliers/SUP-D/huge.pdf": "oversized",
    "suppliers/SUP-D/contract.docx": "unsupported",
}
MAX_BYTES = 1_000_000


def drop(settings: Settings, tenant: str, relative: str, doc: SampleDocument, variant: Variant):
    target = settings.tenant_inbox(tenant) / relative
    written = render(doc, target, variant)
    assert written == target, "the sample keeps the name asked for"
    return written


def expected(doc: SampleDocument) -> dict[str, str]:
    values = {
        "legal_name": doc.legal_name,
        "issuer": doc.issuer,
        "document_number": doc.number,
        "issue_date": doc.issue_date.isoformat(),
    }
    if doc.expiry_date:
        values["expiry_date"] = doc.expiry_date.isoformat()
    if doc.coverage_amount is not None:
        values["coverage_amount"] = f"{doc.coverage_amount:.2f}"
        values["currency"] = doc.currency or ""
    return values


def squeezed(text: str) -> str:
    """OCR may drop a space between words; names are compared without them."""
    return "".join(text.split()).casefold()


@dataclass
class Batch:
    settings: Settings
    first: DocumentsLoad
    second: DocumentsLoad
    seconds: float

    def documents(self) -> list[dict]:
        return pq.read_table(documents_path(self.settings, TENANT)).to_pylist()

    def fields(self) -> list[dict]:
        return pq.read_table(fields_path(self.settings, TENANT)).to_pylist()

    def document(self, path: str) -> dict:
        (row,) = [d for d in self.documents() if d["path"] == path]
        return row

    def fields_of(self, path: str) -> dict[str, dict]:
        document_id = self.document(path)["document_id"]
        return {f["field"]: f for f in self.fields() if f["document_id"] == document_id}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    home = tmp_path_factory.mktemp("supdocs") / "bizos"
    settings = get_settings(home=home, database_url=None, max_document_bytes=MAX_BYTES)
    for relative, (doc, variant) in GOOD.items():
        drop(settings, TENANT, relative, doc, variant)
    # The same certificate again under another name (listed after coi.pdf, whose
    # path the document keeps): one document.
    inbox = settings.tenant_inbox(TENANT)
    shutil.copyfile(inbox / "suppliers/SUP-A/coi.pdf", inbox / "suppliers/SUP-A/resent-coi.pdf")
    bad = settings.tenant_inbox(TENANT) / "suppliers" / "SUP-D"
    drop(settings, TENANT, "suppliers/SUP-D/truncated.pdf", COI, Variant.CORRUPT)
    drop(settings, TENANT, "suppliers/SUP-D/locked.pdf", COI, Variant.ENCRYPTED)
    (bad / "blank.pdf").write_bytes(b"")
    (bad / "huge.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(MAX_BYTES))
    (bad / "contract.docx").write_bytes(b"PK\x03\x04" + os.urandom(2048))
    # Not supplier folders: reported and skipped.
    (settings.tenant_inbox(TENANT) / "suppliers" / "not a supplier!").mkdir()
    (settings.tenant_inbox(TENANT) / "suppliers" / "stray.pdf").write_bytes(b"%PDF-1.4")
    os.symlink(bad, settings.tenant_inbox(TENANT) / "suppliers" / "SUP-LINK")

    started = time.perf_counter()
    first = read_supplier_documents(settings, TENANT, run_id="run-1", now=LATER)
    seconds = time.perf_counter() - started
    second = read_supplier_documents(settings, TENANT, run_id="run-2", now=LATER)
    return Batch(settings, first, second, seconds)


# -- reading and extraction ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", [p for p, (_, v) in GOOD.items() if v is not Variant.SCANNED_WITH_COVER]
)
def test_fields_come_out_as_the_document_states_them(batch: Batch, path: str) -> None:
    doc, variant = GOOD[path]
    found = batch.fields_of(path)
    values = {name: row["value"] for name, row in found.items()}
    if variant is Variant.PNG:  # OCR: spaces in names may be lost, nothing else
        for name in ("legal_name", "issuer"):
            assert squeezed(values.pop(name)) == squeezed(expected(doc).get(name, ""))
        assert values == {
            k: v for k, v in expected(doc).items() if k not in ("legal_name", "issuer")
        }
    else:
        assert values == expected(doc)
    for row in found.values():
        assert 0 < row["confidence"] <= 1
        assert row["page"] == 1
        assert row["method"] == ("ocr" if variant is Variant.PNG else "text")


def test_a_text_pdf_field_says_which_line_and_characters_it_came_from(batch: Batch) -> None:
    found = batch.fields_of("suppliers/SUP-A/coi.pdf")
    # "Policy Number: GL-2024-88123" is the 8th line of the certificate
    assert found["document_number"]["location"] == "line 8, chars 16-28"
    assert found["expiry_date"]["location"] == "line 10, chars 25-34"
    assert found["currency"]["location"] == "line 11, chars 26-28"


def test_a_scan_behind_a_typed_cover_page_is_read_by_ocr_on_its_page(batch: Batch) -> None:
    path = "suppliers/SUP-C/coi-scan.pdf"
    document = batch.document(path)
    assert document["extraction_method"] == "ocr"
    assert document["media_type"] == "application/pdf" and document["pages"] == 2
    assert document["doc_type"] == "certificate_of_insurance"
    found = batch.fields_of(path)
    want = expected(SCANNED_COI)
    for name in ("document_number", "issue_date", "expiry_date", "coverage_amount", "currency"):
        assert found[name]["value"] == want[name], name
    for name in ("legal_name", "issuer"):
        assert squeezed(found[name]["value"]) == squeezed(want[name]), name
    for row in found.values():
        assert row["method"] == "ocr" and row["page"] == 2
        assert re.fullmatch(r"line \d+, box \d+,\d+,\d+,\d+", row["location"]), row
    # The scan has no text layer at all: without OCR nothing would be found.
    data = (batch.settings.tenant_inbox(TENANT) / path).read_bytes()
    assert b"Allianz" not in data


def test_each_kind_of_document_is_classified(batch: Batch) -> None:
    for path, (doc, _) in GOOD.items():
        document = batch.document(path)
        assert document["doc_type"] == doc.kind, path
        assert document["doc_type_confidence"] >= 0.6, path
        assert document["supplier_id"] == path.split("/")[1]


def test_a_document_that_is_none_of_the_kinds_is_other() -> None:
    notice = SampleDocument(
        "other", "Adatum Corp", "Fabrikam Logistics", "REF-2291", date(2026, 1, 5)
    )
    document = read_document(render_bytes(notice, Variant.TEXT_PDF), "notice.pdf", max_pages=5)
    assert RulesExtractor().extract(document).doc_type == "other"


@pytest.mark.parametrize(
    ("text", "iso", "sure"),
    [
        ("Valid Until: 2027-03-31", "2027-03-31", True),
        ("Expiry Date: 31.03.2027", "2027-03-31", True),
        ("Expires 31/03/2027", "2027-03-31", True),  # 31 cannot be a month
        ("Expires 03/04/2027", "2027-03-04", False),  # March 4 or 3 April: doubt
        ("Issued on 4 May 2026", "2026-05-04", True),
        ("Issued on Sept. 1, 2026", "2026-09-01", True),
        ("Date: 1st Jan 2027", "2027-01-01", True),
        ("Date:May20,2026", "2026-05-20", True),  # OCR dropped the spaces
        ("Valid until 20May2026", "2026-05-20", True),
    ],
)
def test_dates_in_the_forms_documents_write_them(text: str, iso: str, sure: bool) -> None:
    found = find_date(text)
    assert found is not None and found.value == iso
    assert (found.confidence == 1.0) is sure
    assert iso == find_date(text[found.start : found.end]).value  # the span is the date


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("General Aggregate Limit: USD 2,000,000.00", "2000000.00", "USD"),
        ("Limit: EUR 1.000.000,00", "1000000.00", "EUR"),
        ("Each Occurrence $1,000,000 / Aggregate $2,000,000", "2000000.00", "USD"),
        ("Sum insured 750,000 GBP", "750000.00", "GBP"),
        ("Limit: UsD 2,0oo,000.00", "2000000.00", "USD"),  # OCR read zeros as o
        ("Policy Number: GL-2024-88123", None, None),  # numbers without a currency
    ],
)
def test_amounts_are_read_with_their_currency(
    text: str, amount: str | None, currency: str | None
) -> None:
    money = find_money(text)
    if amount is None:
        assert money is None
        return
    assert money is not None and money.currency is not None
    assert (money.amount.value, money.currency.value) == (amount, currency)


# -- the batch: bad files, duplicates, re-runs --------------------------------------


def test_bad_files_are_quarantined_with_their_reason_and_the_rest_lands(batch: Batch) -> None:
    rows = pq.read_table(quarantine_path(batch.settings, TENANT)).to_pylist()
    reasons = {row["source_file"]: row["reason"].split(":")[0] for row in rows}
    assert reasons == BAD
    for row in rows:
        assert row["tenant_id"] == TENANT and row["source"] == "supplier_docs/documents"
        assert json.loads(row["raw_record"])["supplier_id"] == "SUP-D"
    landed = {d["path"] for d in batch.documents()}
    assert landed == set(GOOD)
    skipped = {s["path"]: s["reason"] for s in batch.first.skipped}
    assert set(skipped) == {
        f"{TENANT}/suppliers/not a supplier!",
        f"{TENANT}/suppliers/stray.pdf",
        f"{TENANT}/suppliers/SUP-LINK",
    }
    assert "symlink" in skipped[f"{TENANT}/suppliers/SUP-LINK"]


def test_the_same_file_twice_is_one_document_and_a_rerun_adds_nothing(batch: Batch) -> None:
    documents = batch.documents()
    assert len({d["document_id"] for d in documents}) == len(documents) == len(GOOD)
    assert batch.first.already_read == 1  # the copy of coi.pdf
    assert batch.second.read == [] and batch.second.fields_landed == 0
    assert batch.second.already_read == len(GOOD) + 1
    assert batch.second.documents_total == len(GOOD)
    assert batch.second.fields_total == batch.first.fields_total == len(batch.fields())
    assert {d["_run_id"] for d in documents} == {"run-1"}
    # the quarantine holds the latest run's refusals, once each
    rows = pq.read_table(quarantine_path(batch.settings, TENANT)).num_rows
    assert rows == len(BAD)


def test_the_lake_tables_have_the_contract_schemas(batch: Batch) -> None:
    assert pq.read_schema(documents_path(batch.settings, TENANT)).equals(
        DOCUMENTS_SCHEMA, check_metadata=False
    )
    assert pq.read_schema(fields_path(batch.settings, TENANT)).equals(
        DOCUMENT_FIELDS_SCHEMA, check_metadata=False
    )
    coi = batch.document("suppliers/SUP-A/coi.pdf")
    data = (batch.settings.tenant_inbox(TENANT) / "suppliers/SUP-A/coi.pdf").read_bytes()
    assert coi["document_id"] == hashlib.sha256(data).hexdigest()
    assert coi["size_bytes"] == len(data) and coi["pages"] == 1 and coi["text_chars"] > 300


def test_a_pdf_over_the_page_limit_is_quarantined_unread() -> None:
    pdf = FPDF()
    for n in range(4):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.cell(100, 10, f"Page {n + 1} of a long catalogue of parts and prices")
    with pytest.raises(Rejected) as refused:
        read_document(bytes(pdf.output()), "catalogue.pdf", max_pages=3)
    assert refused.value.reason == "oversized"
    assert "4 pages, over the limit of 3" in str(refused.value)


def test_a_document_over_the_time_limit_is_quarantined_and_the_batch_goes_on(
    tmp_path,
) -> None:
    """A scan needs OCR (seconds); under a limit of a fraction of that it is
    quarantined as ``timeout``, its reader process is killed, and the next
    document gets a fresh one and lands."""
    settings = get_settings(home=tmp_path / "bizos", database_url=None, max_document_seconds=0.3)
    drop(settings, TENANT, "suppliers/SUP-A/a-scan.pdf", SCANNED_COI, Variant.SCANNED_PDF)
    drop(settings, TENANT, "suppliers/SUP-A/b-coi.pdf", COI, Variant.TEXT_PDF)
    load = read_supplier_documents(settings, TENANT, run_id="run-1", now=LATER)
    [refused] = load.quarantined
    assert refused["path"].endswith("a-scan.pdf") and refused["reason"].startswith("timeout: ")
    assert [p for p in load.read if p.endswith("b-coi.pdf")] == load.read and load.read


@pytest.fixture(scope="module")
def duckdb_staged(batch: Batch) -> Batch:
    """The batch's lake built into DuckDB's staging models (with their dbt tests)."""
    dbt_build(
        batch.settings,
        batch.settings.home / "dbt-run",
        "--select",
        "path:models/staging/supplier_docs",
    )
    return batch


def test_staging_models_build_on_duckdb_from_the_lake(duckdb_staged: Batch) -> None:
    batch = duckdb_staged
    with duckdb.connect(str(batch.settings.warehouse_path), read_only=True) as conn:
        documents = conn.execute(
            "select path, doc_type from staging.stg_supplier_docs__documents order by path"
        ).fetchall()
        expiry = conn.execute(
            "select d.path, f.value, f.page from staging.stg_supplier_docs__document_fields f"
            " join staging.stg_supplier_docs__documents d using (tenant_id, document_id)"
            " where f.field = 'expiry_date' and d.supplier_id = 'SUP-A'"
        ).fetchall()
    assert documents == sorted((path, doc.kind) for path, (doc, _) in GOOD.items())
    assert expiry == [("suppliers/SUP-A/coi.pdf", "2027-03-31", 1)]


STAGED_DOCUMENTS = (
    "select tenant_id, document_id, supplier_id, path, doc_type, extraction_method, pages,"
    " size_bytes from staging.stg_supplier_docs__documents"
)
STAGED_FIELDS = (
    "select document_id, field, value, round(confidence::numeric, 3), page, location, method"
    " from staging.stg_supplier_docs__document_fields"
)


@pytest.mark.postgres
def test_staging_on_postgres_equals_duckdb(duckdb_staged: Batch, pg_url: str) -> None:
    """The raw copies load from the same lake files and staging gives the same rows."""
    batch = duckdb_staged
    settings = batch.settings.model_copy(update={"database_url": SecretStr(pg_url)})
    for table in lake_tables():
        if table.source == "supplier_docs":
            load_tenant(pg_url, table, lake_dir=settings.lake_dir, tenant_id=TENANT)
    dbt_build(settings, settings.home / "dbt-pg", "--select", "path:models/staging/supplier_docs")
    with psycopg.connect(pg_url) as conn:
        pg_documents = sorted(conn.execute(STAGED_DOCUMENTS).fetchall())
        pg_fields = sorted(conn.execute(STAGED_FIELDS).fetchall())
    duck_settings = batch.settings
    with duckdb.connect(str(duck_settings.warehouse_path), read_only=True) as conn:
        duck_documents = sorted(conn.execute(STAGED_DOCUMENTS).fetchall())
        duck_fields = sorted(
            tuple(Decimal(str(v)) if isinstance(v, float) else v for v in row)
            for row in conn.execute(STAGED_FIELDS.replace("::numeric", "")).fetchall()
        )
    assert len(pg_documents) == len(GOOD)
    assert pg_documents == duck_documents
    assert [r[:3] + r[4:] for r in pg_fields] == [r[:3] + r[4:] for r in duck_fields]
    assert [float(r[3]) for r in pg_fields] == pytest.approx([float(r[3]) for r in duck_fields])


# -- Dagster -------------------------------------------------------------------------


def test_the_asset_materializes_a_tenant_and_the_sensor_asks_for_a_run(
    settings: Settings,
) -> None:
    drop(settings, "t2", "suppliers/S1/coi.pdf", COI, Variant.TEXT_PDF)
    drop(settings, "t2", "suppliers/S1/broken.pdf", COI, Variant.CORRUPT)
    old = time.time() - 3600
    for path in (settings.tenant_inbox("t2") / "suppliers" / "S1").iterdir():
        os.utime(path, (old, old))
    resources = {"bizos": BizosSettings(home=str(settings.home), database_url="")}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(tenants.name or "tenants", ["t2"])

        context = build_sensor_context(instance=instance, resources=resources)
        requested = supplier_document_arrivals(context)
        assert [r.partition_key for r in requested.run_requests] == ["t2"]
        again = build_sensor_context(
            instance=instance, resources=resources, cursor=requested.cursor
        )
        assert supplier_document_arrivals(again).run_requests == []

        result = materialize(
            [supplier_docs_read], partition_key="t2", instance=instance, resources=resources
        )
        assert result.success
        by_key = {
            m.asset_key: m.metadata
            for m in result.asset_materializations_for_node("supplier_docs_read")
        }
        assert by_key[DOCUMENTS_KEY]["documents_total"].value == 1
        assert by_key[FIELDS_KEY]["fields_landed"].value == len(expected(COI))
        assert [q["path"] for q in by_key[DOCUMENTS_KEY]["quarantined"].value] == [
            "suppliers/S1/broken.pdf"
        ]
        (row,) = pq.read_table(documents_path(settings, "t2")).to_pylist()
        assert row["tenant_id"] == "t2" and row["_run_id"] == result.run_id

        # A new document changes the tenant's fingerprint: one more run.
        drop(settings, "t2", "suppliers/S1/w9.pdf", W9, Variant.TEXT_PDF)
        os.utime(settings.tenant_inbox("t2") / "suppliers/S1/w9.pdf", (old, old + 1))
        later = build_sensor_context(
            instance=instance, resources=resources, cursor=requested.cursor
        )
        assert [r.partition_key for r in supplier_document_arrivals(later).run_requests] == ["t2"]


def test_a_tenants_run_reads_its_documents_before_dbt(settings: Settings) -> None:
    """`bizos run --tenant T`, the daily schedule and the sensor all run materialize_all:
    it holds both tables, and dbt's staging models come after their raw copies."""
    defs = build_definitions(settings)
    job = defs.resolve_job_def("materialize_all")
    assert {DOCUMENTS_KEY, FIELDS_KEY} <= set(job.asset_layer.executable_asset_keys)
    graph = defs.resolve_asset_graph()
    for key, model in (
        (DOCUMENTS_KEY, "stg_supplier_docs__documents"),
        (FIELDS_KEY, "stg_supplier_docs__document_fields"),
    ):
        raw = AssetKey(["raw", f"supplier_docs__{key.path[-1]}"])
        assert graph.get(raw).parent_keys == {key}
        assert graph.get(AssetKey([model])).parent_keys == {raw}
    sensor = defs.resolve_sensor_def("supplier_document_arrivals")
    assert sensor.job_name == "materialize_all"


# -- the LLM extractor ---------------------------------------------------------------


class ChatServer:
    """A local chat-completions endpoint answering with whatever the test sets."""

    def __init__(self) -> None:
        self.answer: dict | None = None
        self.status = 200
        self.requests: list[tuple[dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {
                                    "role": "assistant",
                                    "content": json.dumps(server.answer),
                                },
                            }
                        ],
                    }
                ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.httpd.shutdown()


LLM_KEY = "sk-test-llm-key-never-logged"


def test_llm_output_goes_through_the_same_validation(chat: ChatServer) -> None:
    document = read_document(render_bytes(COI, Variant.TEXT), "coi.txt", max_pages=5)
    chat.status = 200
    chat.answer = {
        "doc_type": "certificate_of_insurance",
        "fields": [
            {"field": "legal_name", "value": "Northwind Traders Ltd", "page": 1, "line": 6},
            {"field": "document_number", "value": "GL-2024-88123", "page": 1, "line": 8},
            {"field": "expiry_date", "value": "03/31/2027", "page": 1, "line": 10},
            {"field": "coverage_amount", "value": "USD 2,000,000.00", "page": 1, "line": 11},
            {"field": "currency", "value": "usd", "page": 1, "line": 11},
            # not a date: dropped
            {"field": "issue_date", "value": "soon", "page": 1, "line": 2},
            # a line the document does not have: no evidence, dropped
            {"field": "issuer", "value": "Harbor Mutual Insurance Co", "page": 3, "line": 40},
            # not a field of the contract: dropped
            {"field": "favourite_colour", "value": "blue", "page": 1, "line": 1},
        ],
    }
    with LlmExtractor(base_url=chat.base_url, api_key=LLM_KEY, model="m-1") as llm:
        extraction = llm.extract(document)
    assert extraction.doc_type == "certificate_of_insurance"
    assert extraction.method == "llm"
    assert {f.field: f.value for f in extraction.fields} == {
        "legal_name": "Northwind Traders Ltd",
        "document_number": "GL-2024-88123",
        "expiry_date": "2027-03-31",
        "coverage_amount": "2000000.00",
        "currency": "USD",
    }
    located = {f.field: f.location for f in extraction.fields}
    assert located["document_number"] == "line 8, chars 16-28"
    headers, body = chat.requests[-1]
    assert headers["Authorization"] == f"Bearer {LLM_KEY}"
    assert body["model"] == "m-1" and "[1:8] Policy Number: GL-2024-88123" in str(body)


def test_an_llm_that_fails_is_an_error_without_the_key(
    chat: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    document = read_document(render_bytes(W9, Variant.TEXT), "w9.txt", max_pages=5)
    chat.status = 400
    caplog.set_level(logging.DEBUG)
    with LlmExtractor(base_url=chat.base_url, api_key=LLM_KEY, model="m-1") as llm:
        with pytest.raises(LlmError) as failed:
            llm.extract(document)
    assert "HTTP 400" in str(failed.value)
    assert LLM_KEY not in str(failed.value) and LLM_KEY not in caplog.text


def test_the_llm_is_used_only_for_a_tenant_that_stored_a_key(
    settings: Settings, chat: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(
        update={
            "master_key": SecretStr(generate_master_key().encoded()),
            "llm_base_url": chat.base_url,
            "llm_model": "m-2",
        }
    )
    assert tenant_extractor(settings, "t3", actor="test") is None  # off by default
    credentials.set_secret(settings, tenant_id="t3", source="llm", secret=LLM_KEY, actor="test")
    drop(settings, "t3", "suppliers/S9/bank.txt", BANK, Variant.TEXT)
    chat.status = 200
    chat.answer = {
        "doc_type": "bank_letter",
        "fields": [{"field": "legal_name", "value": "Litware Trading LLC", "page": 1, "line": 7}],
    }
    caplog.set_level(logging.DEBUG)
    extractor = tenant_extractor(settings, "t3", actor="test")
    assert extractor is not None
    with extractor:
        load = read_supplier_documents(settings, "t3", run_id="r", extractor=extractor, now=LATER)
    assert load.read == ["suppliers/S9/bank.txt"] and load.llm_fallbacks == 0
    (document,) = pq.read_table(documents_path(settings, "t3")).to_pylist()
    assert document["extraction_method"] == "llm" and document["doc_type"] == "bank_letter"
    (field,) = pq.read_table(fields_path(settings, "t3")).to_pylist()
    assert (field["field"], field["value"], field["method"]) == (
        "legal_name",
        "Litware Trading LLC",
        "llm",
    )
    assert chat.requests[-1][1]["model"] == "m-2"

    # The LLM refuses the next document: the rules read it, the batch goes on.
    drop(settings, "t3", "suppliers/S9/w9.txt", W9, Variant.TEXT)
    chat.status = 400
    with tenant_extractor(settings, "t3", actor="test") as extractor:
        load = read_supplier_documents(settings, "t3", run_id="r2", extractor=extractor, now=LATER)
    assert load.read == ["suppliers/S9/w9.txt"] and load.llm_fallbacks == 1
    w9 = [
        d for d in pq.read_table(documents_path(settings, "t3")).to_pylist() if d["_run_id"] == "r2"
    ]
    assert [(d["doc_type"], d["extraction_method"]) for d in w9] == [("tax_form", "text")]
    assert LLM_KEY not in caplog.text
