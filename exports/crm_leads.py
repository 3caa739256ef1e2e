"""CRM lead exports from a tenant's inbox into the lake, with a quarantine.

A tenant's partition is rebuilt from every export in its inbox on each run and
replaced atomically, so a re-run never duplicates and a failed run leaves the
previous partition as it was.

The load streams: files are read a record at a time, parsed rows are checked
and written to a staging file in batches, and the latest row per lead is picked
in a second pass over the staging file, so memory is one batch plus a
``(lead_id, seq)`` index, however large the export.

Every physical line after a file's header is counted once, as loaded, quarantined
or blank. A file that cannot be read at all (a bad header, over the size limit)
is quarantined as a file, with ``source_line`` null, and the tenant's other files
still load. Empty, still-uploading and linked files are skipped with a notice.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.contracts.crm_export import REQUIRED_COLUMNS
from core.settings import Settings
from exports.crm_csv import EXCERPT_CHARS, ExportReader, ExportSchemaError, LeadShape, Record
from exports.inbox import InboxChanged, InboxNotice, open_export, tenant_exports
from lake.files import (
    LakePath,
    PartitionWriter,
    lake_root,
    partition_dir,
    quarantine_root,
    read_partition,
)
from lake.quarantine import QUARANTINE_SCHEMA
from quality.crm_leads import row_rule_failures

log = logging.getLogger(__name__)

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

BATCH_ROWS = 50_000
"""Rows parsed before they are checked and written out: the load's memory unit."""

# A parsed row as the batch holds it: the required cells, the extra cells
# (``_x0``…, one per extra column of the file), then bookkeeping.
_ROW_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    **dict.fromkeys(REQUIRED_COLUMNS, pl.String),
    "created_at": pl.Datetime("us", "UTC"),
}
_BOOKKEEPING: dict[str, pl.DataType | type[pl.DataType]] = {
    "_source_line": pl.Int64,
    "_lines": pl.Int64,
    "_seq": pl.Int64,
}


def custom_attributes(extra_names: list[str]) -> pl.Expr:
    """A JSON object of the non-empty extra cells, keys sorted, built column-wise."""
    if not extra_names:
        return pl.lit("{}")
    members = [
        pl.when(pl.col(f"_x{k}") != "").then(
            pl.struct(pl.col(f"_x{k}").alias(name))
            .struct.json_encode()
            .str.strip_prefix("{")
            .str.strip_suffix("}")
        )
        for k, name in enumerate(extra_names)
    ]
    joined = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.concat_str([pl.lit("{"), joined, pl.lit("}")])


_STAGING_SCHEMA = LEADS_SCHEMA.append(pa.field("_seq", pa.int64()))


@dataclass
class LeadsLoad:
    """What one load did, for Dagster metadata and the CLI."""

    tenant_id: str
    files: list[str] = field(default_factory=list)
    files_skipped: list[dict[str, str]] = field(default_factory=list)
    files_quarantined: list[dict[str, str]] = field(default_factory=list)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0
    lines_read: int = 0
    """Physical lines after each read file's header: loaded + quarantined + blank."""
    lines_loaded: int = 0
    lines_quarantined: int = 0
    lines_blank: int = 0
    bytes_written: int = 0
    lake_path: LakePath | None = None
    quarantine_path: LakePath | None = None
    suite: dict[str, object] = field(default_factory=dict)


def leads_path(settings: Settings, tenant_id: str) -> LakePath:
    return (
        partition_dir(lake_root(settings), "crm_export", "leads", tenant=tenant_id)
        / "leads.parquet"
    )


def quarantine_path(settings: Settings, tenant_id: str) -> LakePath:
    return (
        partition_dir(quarantine_root(settings), "crm_export", "leads", tenant=tenant_id)
        / "quarantine.parquet"
    )


class _LeadsLoader:
    """One tenant's load in progress: the open writers, the batch and the counts."""

    def __init__(self, settings: Settings, load: LeadsLoad, at: datetime) -> None:
        self.load = load
        self.at = at
        self.seq = 0
        self.rows: list[list[object]] = []
        self.file = ""
        self.quarantine = PartitionWriter(
            quarantine_path(settings, load.tenant_id), QUARANTINE_SCHEMA
        )
        self.staging = PartitionWriter(
            leads_path(settings, load.tenant_id).with_name(f"staging-{uuid.uuid4().hex}.parquet"),
            _STAGING_SCHEMA,
        )
        self.quarantined: list[dict[str, object]] = []
        self.extra_names: list[str] = []

    def reject(self, file: str, line: int | None, reason: str, raw: str, lines: int) -> None:
        self.quarantined.append(
            {
                "tenant_id": self.load.tenant_id,
                "source": "crm_export",
                "source_file": file,
                "source_line": line,
                "reason": reason,
                "raw_record": raw,
                "quarantined_at": self.at,
            }
        )
        self.load.lines_quarantined += lines
        if line is not None:
            self.load.rows_quarantined += 1
        if len(self.quarantined) >= BATCH_ROWS:
            self.flush_quarantine()

    def flush_quarantine(self) -> None:
        self.quarantine.write(pa.Table.from_pylist(self.quarantined, schema=QUARANTINE_SCHEMA))
        self.quarantined = []

    def read_file(self, fh: BinaryIO, name: str) -> None:
        """Stream one export; ExportSchemaError (before any row) when its header is bad."""
        reader = ExportReader(fh)
        shape = LeadShape(reader.read_header(name))
        self.file = name
        self.extra_names = shape.extra_names
        load = self.load
        for record in reader.records():
            load.lines_read += record.lines
            if record.values is None:
                self.reject(name, record.line, str(record.reason), record.excerpt, record.lines)
            elif record.blank:
                load.lines_blank += record.lines
            else:
                self._add(record, shape)
        self.flush_rows()

    def _add(self, record: Record, shape: LeadShape) -> None:
        assert record.values is not None
        lead = shape.lead(record.values)
        if isinstance(lead, str):
            raw = json.dumps(record.values, ensure_ascii=False)
            self.reject(self.file, record.line, lead, _bounded(raw), record.lines)
            return
        self.seq += 1
        lead.extend((record.line, record.lines, self.seq))
        self.rows.append(lead)
        if len(self.rows) >= BATCH_ROWS:
            self.flush_rows()

    def flush_rows(self) -> None:
        """Check the batch with the suite's row rules; stage the good, quarantine the rest."""
        if not self.rows:
            return
        extras = {f"_x{k}": pl.String for k in range(len(self.extra_names))}
        frame = pl.DataFrame(
            self.rows, schema={**_ROW_SCHEMA, **extras, **_BOOKKEEPING}, orient="row"
        ).with_columns(custom_attributes=custom_attributes(self.extra_names))
        self.rows = []
        failures = row_rule_failures(frame)
        bad = frame.filter(failures.is_not_null()).with_columns(
            failures.filter(failures.is_not_null()).alias("_reason")
        )
        good = frame.filter(failures.is_null())
        for row in bad.iter_rows(named=True):
            raw = {k: v for k, v in row.items() if not k.startswith("_")}
            self.reject(
                self.file,
                int(row["_source_line"]),
                f"failed {row['_reason']}",
                _bounded(json.dumps(raw, default=str, sort_keys=True, ensure_ascii=False)),
                int(row["_lines"]),
            )
        self.load.lines_loaded += int(good["_lines"].sum())
        staged = good.drop("_lines").with_columns(
            tenant_id=pl.lit(self.load.tenant_id),
            _source_file=pl.lit(self.file),
            _ingested_at=pl.lit(self.at).cast(pl.Datetime("us", "UTC")),
        )
        self.staging.write(staged.select(_STAGING_SCHEMA.names).to_arrow())

    def publish_latest(self, settings: Settings) -> None:
        """Write the latest row per lead (highest seq) as the partition, then swap both files."""
        if self.quarantined:
            self.flush_quarantine()
        self.staging.close()
        staged = self.staging.rows
        with PartitionWriter(leads_path(settings, self.load.tenant_id), LEADS_SCHEMA) as leads:
            if staged:
                path = self.staging.written_path
                latest = (
                    pl.read_parquet(path, columns=["lead_id", "_seq"])
                    .group_by("lead_id")
                    .agg(pl.col("_seq").max().alias("_latest"))
                )
                for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    kept = frame.join(latest, on="lead_id", how="left", maintain_order="left")
                    kept = kept.filter(pl.col("_seq") == pl.col("_latest"))
                    leads.write(kept.select(LEADS_SCHEMA.names).to_arrow())
            self.load.rows_loaded = leads.rows
            self.load.duplicates_dropped = staged - leads.rows
            self.load.bytes_written = leads.commit()
        self.quarantine.commit()

    def discard(self) -> None:
        self.staging.discard()
        self.quarantine.discard()


def _bounded(raw: str) -> str:
    return raw if len(raw) <= EXCERPT_CHARS else raw[:EXCERPT_CHARS] + "…"


def ingest_crm_leads(settings: Settings, tenant_id: str) -> LeadsLoad:
    """Parse, validate, de-duplicate and land one tenant's CRM exports."""
    now = datetime.now(UTC)
    load = LeadsLoad(tenant_id=tenant_id)
    load.lake_path = leads_path(settings, tenant_id)
    load.quarantine_path = quarantine_path(settings, tenant_id)
    exports = tenant_exports(settings, tenant_id)
    skipped = list(exports.skipped)
    loader = _LeadsLoader(settings, load, now)
    try:
        for big in exports.too_large:
            reason = (
                f"file of {big.size:,} bytes is over the {settings.max_export_bytes:,}-byte "
                "limit (BIZOS_MAX_EXPORT_BYTES); not read"
            )
            _quarantine_file(loader, big.name, reason, big.size)
        for listed in exports.files:
            try:
                with open_export(settings, tenant_id, listed) as fh:
                    loader.read_file(fh, listed.name)
            except ExportSchemaError as exc:
                _quarantine_file(loader, listed.name, str(exc), listed.size)
            except InboxChanged as exc:
                skipped.append(InboxNotice(listed.name, str(exc)))
            else:
                load.files.append(listed.name)
        loader.publish_latest(settings)
    finally:
        loader.discard()
    load.rows_in = load.rows_loaded + load.duplicates_dropped + load.rows_quarantined
    for notice in skipped:
        log.warning("tenant %s: export skipped: %s", tenant_id, notice)
    load.files_skipped = [asdict(n) for n in skipped]
    return load


def _quarantine_file(loader: _LeadsLoader, name: str, reason: str, size: int) -> None:
    log.warning("tenant %s: export quarantined as a file: %s", loader.load.tenant_id, reason)
    loader.load.files_quarantined.append({"path": name, "reason": reason})
    loader.reject(name, None, reason, json.dumps({"bytes": size}), 0)


def read_leads(settings: Settings, tenant_id: str) -> pa.Table | None:
    return read_partition(leads_path(settings, tenant_id))


def read_quarantine(settings: Settings, tenant_id: str) -> pa.Table | None:
    return read_partition(quarantine_path(settings, tenant_id))
