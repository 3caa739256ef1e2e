"""Supplier documents in the lake: the two tables the document reader lands.

``lake/supplier_docs/documents/tenant=<id>/`` holds one row per document a
tenant dropped under ``inbox/<tenant>/suppliers/<supplier>/``;
``lake/supplier_docs/document_fields/tenant=<id>/`` one row per field found in
one. Shared by the reader (``supplier_docs``), the raw loader and dbt's sources,
and by the supplier risk models that read them, so none of them can drift. The
contract only grows: columns are added, never renamed or removed.
"""

from __future__ import annotations

import re

import pyarrow as pa

SOURCE = "supplier_docs"
"""The lake source name: ``lake/supplier_docs/<table>/tenant=<id>/``."""

DOCUMENTS_TABLE = "documents"
FIELDS_TABLE = "document_fields"

SUPPLIERS_FOLDER = "suppliers"
"""A tenant's supplier documents live in ``<inbox>/<tenant>/suppliers/<supplier>/``."""

SUPPLIER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SUPPLIER_ID_RULE = (
    "letters, digits, '.', '-' or '_', at most 64 characters, starting with a letter or digit"
)
"""A supplier folder's name is the supplier_id the documents belong to (the same
id as in suppliers.csv); other folder names are reported and skipped."""


def is_supplier_id(value: object) -> bool:
    return isinstance(value, str) and SUPPLIER_ID_PATTERN.fullmatch(value) is not None


DOC_TYPES: tuple[str, ...] = (
    "certificate_of_insurance",
    "quality_certificate",
    "business_licence",
    "tax_form",
    "bank_letter",
    "other",
)
"""What a document is; ``other`` when no kind scores high enough."""

FIELDS: tuple[str, ...] = (
    "legal_name",
    "issuer",
    "document_number",
    "issue_date",
    "expiry_date",
    "coverage_amount",
    "currency",
)
"""The fields extracted. Values are text: dates ISO 8601 (``2026-03-31``), amounts
decimal with a dot and no grouping (``2000000.00``), currencies ISO 4217."""

EXTRACTION_METHODS: tuple[str, ...] = ("text", "ocr", "llm")
"""How a document's text or a field was read: the PDF's own text layer, OCR of
its images, or the tenant's LLM (off unless the tenant stored a key)."""

TIMESTAMP = pa.timestamp("us", tz="UTC")

DOCUMENTS_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("supplier_id", pa.string(), nullable=False),
        pa.field("file_name", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("media_type", pa.string(), nullable=False),
        pa.field("pages", pa.int32(), nullable=False),
        pa.field("doc_type", pa.string(), nullable=False),
        pa.field("doc_type_confidence", pa.float64(), nullable=False),
        pa.field("extraction_method", pa.string(), nullable=False),
        pa.field("text_chars", pa.int64(), nullable=False),
        pa.field("received_at", TIMESTAMP, nullable=False),
        pa.field("_run_id", pa.string(), nullable=False),
        pa.field("_ingested_at", TIMESTAMP, nullable=False),
    ]
)
"""One row per document and tenant. ``document_id`` is the sha256 (hex) of the
file's bytes, so the same file dropped twice, or under two names, is one
document (the first one read keeps its path and supplier). ``path`` is relative
to the tenant's inbox (``suppliers/<supplier>/<file>``); ``received_at`` is the
file's modification time."""

DOCUMENT_FIELDS_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("supplier_id", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("confidence", pa.float64(), nullable=False),
        pa.field("page", pa.int32(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("_run_id", pa.string(), nullable=False),
        pa.field("_ingested_at", TIMESTAMP, nullable=False),
    ]
)
"""At most one row per (tenant, document, field): the best candidate found.
``page`` is 1-based; ``location`` says where on it, e.g. ``line 4, chars 18-31``
for text, ``line 4, box 112,340,598,362`` (pixels) for OCR."""
