"""A tenant's supplier documents read into the lake, once each, with a quarantine.

Each run lists the tenant's supplier folders, hashes every file and reads only
the ones whose sha256 is not in the tenant's documents table yet: a re-run, or
the same file dropped again under another name, adds nothing. New rows are
appended to the tenant's two partitions, each replaced atomically
(``lake.files.write_partition``); the fields file is written first and only
keeps fields of documents in the documents file, so a run that dies between the
two writes leaves no orphan and the next run reads those documents again.

A file that cannot be read is quarantined with its reason (corrupt, encrypted,
empty, oversized, unsupported, or timeout: each document is read in a worker
process within ``BIZOS_MAX_DOCUMENT_SECONDS``, supplier_docs/isolation.py) and
the rest of the batch goes on. The
quarantine holds the files refused by the latest run: a file fixed or removed
leaves it, one still there is refused again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from filelock import FileLock

from core.contracts.supplier_docs import (
    DOCUMENT_FIELDS_SCHEMA,
    DOCUMENTS_SCHEMA,
    DOCUMENTS_TABLE,
    FIELDS_TABLE,
    SOURCE,
)
from core.settings import Settings
from core.tenancy import check_tenant_id
from exports.inbox import InboxChanged, open_inbox_file
from lake.files import (
    LakePath,
    lake_root,
    partition_dir,
    quarantine_root,
    read_partition,
    write_partition,
)
from lake.quarantine import QUARANTINE_SCHEMA
from supplier_docs.extraction import Extraction, Extractor, RulesExtractor
from supplier_docs.inbox import ListedDocument, supplier_documents
from supplier_docs.isolation import DocumentReadError, TimedReader
from supplier_docs.llm import LlmError
from supplier_docs.reading import Rejected

log = logging.getLogger(__name__)


@dataclass
class DocumentsLoad:
    """What one tenant's run did, for Dagster metadata and the CLI."""

    tenant_id: str
    listed: int = 0
    read: list[str] = field(default_factory=list)
    """Paths of documents read and landed this run."""
    already_read: int = 0
    """Files whose content was landed before (by this or an earlier run)."""
    fields_landed: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    llm_fallbacks: int = 0
    documents_total: int = 0
    fields_total: int = 0
    documents_path: LakePath | None = None
    fields_path: LakePath | None = None
    quarantine_path: LakePath | None = None

    def summary(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("documents_path", "fields_path", "quarantine_path"):
            out[key] = str(out[key]) if out[key] else None
        return out


def documents_path(settings: Settings, tenant_id: str) -> LakePath:
    folder = partition_dir(lake_root(settings), SOURCE, DOCUMENTS_TABLE, tenant=tenant_id)
    return folder / "documents.parquet"


def fields_path(settings: Settings, tenant_id: str) -> LakePath:
    folder = partition_dir(lake_root(settings), SOURCE, FIELDS_TABLE, tenant=tenant_id)
    return folder / "document_fields.parquet"


def quarantine_path(settings: Settings, tenant_id: str) -> LakePath:
    folder = partition_dir(quarantine_root(settings), SOURCE, DOCUMENTS_TABLE, tenant=tenant_id)
    return folder / "quarantine.parquet"


def _existing(path: LakePath, schema: pa.Schema) -> pa.Table:
    table = read_partition(path)
    if table is None:
        return schema.empty_table()
    return table.select(schema.names).cast(schema)


def _read_bytes(settings: Settings, tenant_id: str, listed: ListedDocument) -> tuple[bytes, float]:
    folders = (tenant_id, *listed.path.split("/")[:-1])
    with open_inbox_file(settings, folders, listed.file) as fh:
        # One byte over the limit is enough to know: a file growing since it was
        # listed is not read whole.
        data = fh.read(settings.max_document_bytes + 1)
        mtime = os.fstat(fh.fileno()).st_mtime
    return data, mtime


def read_supplier_documents(
    settings: Settings,
    tenant_id: str,
    *,
    run_id: str,
    extractor: Extractor | None = None,
    now: float | None = None,
) -> DocumentsLoad:
    """Read the tenant's new supplier documents into the lake; see the module doc.

    Runs of one tenant take turns (a file lock under ``state/locks``): two at once
    would each append the same new documents.
    """
    check_tenant_id(tenant_id)
    lock_path = settings.state_dir / "locks" / f"supplier_docs-{tenant_id}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path):
        return _read_locked(settings, tenant_id, run_id=run_id, extractor=extractor, now=now)


def _read_locked(
    settings: Settings,
    tenant_id: str,
    *,
    run_id: str,
    extractor: Extractor | None,
    now: float | None,
) -> DocumentsLoad:
    docs_file = documents_path(settings, tenant_id)
    fields_file = fields_path(settings, tenant_id)
    quarantine_file = quarantine_path(settings, tenant_id)
    load = DocumentsLoad(
        tenant_id,
        documents_path=docs_file,
        fields_path=fields_file,
        quarantine_path=quarantine_file,
    )
    at = datetime.now(UTC)
    rules = RulesExtractor()
    inbox = supplier_documents(settings, tenant_id, now=now)
    load.listed = len(inbox.documents)
    load.skipped = [{"path": n.path, "reason": n.reason} for n in inbox.skipped]

    documents = _existing(docs_file, DOCUMENTS_SCHEMA)
    known = set(documents.column("document_id").to_pylist())
    fields = _existing(fields_file, DOCUMENT_FIELDS_SCHEMA)
    if fields.num_rows:
        fields = fields.filter(pc.is_in(fields["document_id"], pa.array(sorted(known))))

    new_documents: list[dict[str, object]] = []
    new_fields: list[dict[str, object]] = []
    quarantine: list[dict[str, object]] = []

    def refuse(listed: ListedDocument, reason: str, digest: str | None = None) -> None:
        log.warning("supplier document quarantined: %s/%s: %s", tenant_id, listed.path, reason)
        load.quarantined.append({"path": listed.path, "reason": reason})
        quarantine.append(
            {
                "tenant_id": tenant_id,
                "source": f"{SOURCE}/{DOCUMENTS_TABLE}",
                "source_file": listed.path,
                "source_line": None,
                "reason": reason,
                "raw_record": json.dumps(
                    {
                        "supplier_id": listed.supplier_id,
                        "size_bytes": listed.file.size,
                        "sha256": digest,
                    }
                ),
                "quarantined_at": at,
            }
        )

    # Read in a worker with a time limit (supplier_docs/isolation.py); started only
    # when a document is new.
    with TimedReader(
        seconds=settings.max_document_seconds, max_pages=settings.max_document_pages
    ) as reader:
        for listed in inbox.documents:
            if listed.file.size > settings.max_document_bytes:
                refuse(
                    listed,
                    f"oversized: {listed.file.size} bytes, over the limit of "
                    f"{settings.max_document_bytes} (BIZOS_MAX_DOCUMENT_BYTES)",
                )
                continue
            try:
                data, mtime = _read_bytes(settings, tenant_id, listed)
            except InboxChanged as exc:
                load.skipped.append({"path": listed.path, "reason": str(exc)})
                continue
            if len(data) > settings.max_document_bytes:
                refuse(listed, "oversized: grew past the limit while being read")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in known:
                load.already_read += 1
                continue
            try:
                document = reader.read(data, listed.file.name)
            except Rejected as exc:
                refuse(listed, str(exc), digest)
                continue
            except DocumentReadError as exc:  # one bad file never stops the batch
                log.warning(
                    "supplier document %s/%s could not be read: %s", tenant_id, listed.path, exc
                )
                refuse(listed, f"corrupt: could not be read ({exc})", digest)
                continue
            extraction: Extraction | None = None
            if extractor is not None:
                try:
                    extraction = extractor.extract(document)
                except LlmError as exc:
                    load.llm_fallbacks += 1
                    log.warning("LLM extraction of %s failed, rules used: %s", listed.path, exc)
            if extraction is None:
                extraction = rules.extract(document)
            known.add(digest)
            load.read.append(listed.path)
            base = {
                "tenant_id": tenant_id,
                "document_id": digest,
                "supplier_id": listed.supplier_id,
            }
            new_documents.append(
                {
                    **base,
                    "file_name": listed.file.name,
                    "path": listed.path,
                    "size_bytes": len(data),
                    "media_type": document.media_type,
                    "pages": document.page_count,
                    "doc_type": extraction.doc_type,
                    "doc_type_confidence": extraction.doc_type_confidence,
                    "extraction_method": extraction.method,
                    "text_chars": document.text_chars,
                    "received_at": datetime.fromtimestamp(mtime, UTC),
                    "_run_id": run_id,
                    "_ingested_at": at,
                }
            )
            for found in extraction.fields:
                new_fields.append(
                    {
                        **base,
                        "field": found.field,
                        "value": found.value,
                        "confidence": found.confidence,
                        "page": found.page,
                        "location": found.location,
                        "method": found.method,
                        "_run_id": run_id,
                        "_ingested_at": at,
                    }
                )

    if new_documents:
        fields = pa.concat_tables(
            [fields, pa.Table.from_pylist(new_fields, schema=DOCUMENT_FIELDS_SCHEMA)]
        )
        documents = pa.concat_tables(
            [documents, pa.Table.from_pylist(new_documents, schema=DOCUMENTS_SCHEMA)]
        )
    if new_documents or not fields_file.exists():
        write_partition(fields, fields_file)
    if new_documents or not docs_file.exists():
        write_partition(documents, docs_file)
    if quarantine or quarantine_file.exists():
        write_partition(pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA), quarantine_file)
    load.fields_landed = len(new_fields)
    load.documents_total = documents.num_rows
    load.fields_total = fields.num_rows
    return load
