"""Parse a tenant's CRM lead export (CSV) into lake rows and rejected rows.

The parser is strict about the file's shape (a missing required column stops
the load with an error naming the file and the column) and forgiving about its
rows: a row that cannot be read (bad encoding, wrong field count, a timestamp
that is not one, a file cut off mid-row) is rejected with its reason and line,
and every other row is kept.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.contracts.crm_export import REQUIRED_COLUMNS


class ExportSchemaError(ValueError):
    """The file itself is unusable; no row of it is loaded."""


@dataclass(frozen=True)
class RejectedRow:
    source_file: str
    source_line: int
    reason: str
    raw_record: str


@dataclass
class ParsedExport:
    rows: list[dict[str, object]] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (date or date-time, with or without offset); naive means UTC."""
    text = value.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _has_undecodable(values: Iterable[str]) -> bool:
    # surrogateescape maps undecodable bytes to lone surrogates U+DC80..U+DCFF.
    return any("\udc80" <= ch <= "\udcff" for v in values for ch in v)


def _raw(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=True)


def parse_crm_export(path: Path, *, tenant_id: str, ingested_at: datetime) -> ParsedExport:
    """Read one export file. Raises ExportSchemaError for a bad header."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ExportSchemaError(f"{path}: the file is empty (no header row)") from None
    except csv.Error as exc:
        raise ExportSchemaError(f"{path}: unreadable header row: {exc}") from None
    header = [h.strip().lower() for h in header]
    if _has_undecodable(header):
        raise ExportSchemaError(f"{path}: the header row is not valid UTF-8")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise ExportSchemaError(f"{path}: missing required column(s) {names}")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise ExportSchemaError(f"{path}: duplicated column(s) {', '.join(duplicated)}")

    extra_columns = [h for h in header if h not in REQUIRED_COLUMNS and h]
    result = ParsedExport()
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rest = text.splitlines()[line - 1 :]
            result.rejected.append(
                RejectedRow(path.name, line, f"unreadable CSV: {exc}", _raw(rest[:50]))
            )
            break
        row_line, line = line, reader.line_num + 1
        if not values or all(not v.strip() for v in values):
            continue
        reject = _check_row(values, header)
        if reject:
            result.rejected.append(RejectedRow(path.name, row_line, reject, _raw(values)))
            continue
        record = dict(zip(header, values, strict=True))
        try:
            created_at = parse_timestamp(record["created_at"]) if record["created_at"] else None
        except ValueError:
            result.rejected.append(
                RejectedRow(
                    path.name,
                    row_line,
                    f"created_at is not a timestamp: {record['created_at']!r}",
                    _raw(values),
                )
            )
            continue
        row: dict[str, object] = {"tenant_id": tenant_id}
        for col in REQUIRED_COLUMNS:
            cell = record[col].strip()
            row[col] = cell or None
        row["created_at"] = created_at
        row["custom_attributes"] = json.dumps(
            {c: record[c] for c in extra_columns if record[c] != ""}, sort_keys=True
        )
        row["_source_file"] = path.name
        row["_source_line"] = row_line
        row["_ingested_at"] = ingested_at
        result.rows.append(row)
    return result


def _check_row(values: list[str], header: list[str]) -> str | None:
    if _has_undecodable(values):
        return "not valid UTF-8 (wrong file encoding?)"
    if len(values) < len(header):
        return f"truncated row: expected {len(header)} fields, got {len(values)}"
    if len(values) > len(header):
        return f"too many fields: expected {len(header)}, got {len(values)}"
    return None
