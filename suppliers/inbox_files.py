"""Reading the supplier files a tenant drops in its inbox: rows out, bad rows named.

- ``suppliers.csv``: ``supplier_id, legal_name, aliases, country`` (aliases
  ``;``-separated, country ISO 3166 alpha-2); any other column is kept, as JSON.
- ``purchase_orders.csv``: an ERP export of orders and receipts.
- ``screening/<list>.jsonl`` (or ``.json``/``.ndjson``): FollowTheMoney entities, one
  per line, as OpenSanctions publishes them; ``screening/<list>.csv``: ``id, name``
  and optional ``aliases`` (``;``), ``countries`` (``;``), ``schema``. The list's name
  is the file's stem.

Each reader takes an open binary file and returns the good rows and the rejected
ones (line, reason, an excerpt), so one bad row never costs the file; a file that
cannot be read at all (no header, a missing column, not UTF-8) raises
:class:`SupplierFileError` and is quarantined whole by the caller.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

EXCERPT_CHARS = 2048
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

SUPPLIER_COLUMNS = ("supplier_id", "legal_name", "aliases", "country")
SUPPLIER_REQUIRED = ("supplier_id", "legal_name")
ORDER_COLUMNS = (
    "po_id",
    "supplier_id",
    "ordered_at",
    "promised_at",
    "received_at",
    "amount",
    "currency",
    "quantity",
    "rejected_quantity",
)
SCREENING_CSV_REQUIRED = ("id", "name")
SCREENING_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")


class SupplierFileError(ValueError):
    """A file that cannot be read at all; the message says why."""


@dataclass(frozen=True)
class Rejected:
    """A row that was not loaded: where, why, and what it held (bounded)."""

    line: int
    reason: str
    raw: str


@dataclass
class FileRows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class _RowError(ValueError):
    pass


def excerpt(raw: str) -> str:
    return raw if len(raw) <= EXCERPT_CHARS else raw[:EXCERPT_CHARS] + "…"


def _text(fh: BinaryIO, name: str) -> io.TextIOWrapper:
    # strict: a file in another encoding is refused whole rather than half-garbled
    return io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")


def _csv_records(
    fh: BinaryIO, name: str, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """(line, cells by header name, raw cells) per record; the header checked first."""
    text = _text(fh, name)
    try:
        reader = csv.reader(text)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise SupplierFileError(f"{name}: empty file, no header") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise SupplierFileError(
                f"{name}: header lacks column(s) {', '.join(missing)} (has {', '.join(header)})"
            )
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise SupplierFileError(f"{name}: header repeats column(s) {', '.join(dupes)}")
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield line, {}, cells
                continue
            yield line, dict(zip(header, cells, strict=True)), cells
    except UnicodeDecodeError as exc:
        raise SupplierFileError(
            f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise SupplierFileError(f"{name}: not a readable CSV file ({exc})") from None
    finally:
        text.detach()


def _width_error(cells: list[str], width: int) -> str:
    return f"{len(cells)} fields where the header has {width}"


def read_suppliers(fh: BinaryIO, name: str) -> FileRows:
    """Rows of ``suppliers.csv``: supplier_id, legal_name, aliases, country, attributes."""
    out = FileRows()
    seen: dict[str, int] = {}
    for line, cells, raw in _csv_records(fh, name, SUPPLIER_REQUIRED):
        raw_text = excerpt(",".join(raw))
        if not cells:
            out.rejected.append(Rejected(line, "row does not match the header's width", raw_text))
            continue
        try:
            row = _supplier_row(cells)
        except _RowError as exc:
            out.rejected.append(Rejected(line, str(exc), raw_text))
            continue
        first = seen.get(row["supplier_id"])
        if first is not None:
            out.rejected.append(
                Rejected(line, f"supplier_id {row['supplier_id']!r} repeats line {first}", raw_text)
            )
            continue
        seen[row["supplier_id"]] = line
        row["_source_line"] = line
        out.rows.append(row)
    return out


def _supplier_row(cells: dict[str, str]) -> dict[str, Any]:
    supplier_id = cells["supplier_id"].strip()
    legal_name = " ".join(cells["legal_name"].split())
    if not supplier_id:
        raise _RowError("supplier_id is empty")
    if len(supplier_id) > 200:
        raise _RowError("supplier_id is longer than 200 characters")
    if not legal_name:
        raise _RowError("legal_name is empty")
    country = cells.get("country", "").strip().upper()
    if country and not COUNTRY_RE.match(country):
        raise _RowError(f"country {country!r} is not an ISO 3166 alpha-2 code")
    aliases = [" ".join(a.split()) for a in cells.get("aliases", "").split(";")]
    extra = {
        k: v.strip()
        for k, v in sorted(cells.items())
        if k not in SUPPLIER_COLUMNS and k and v.strip()
    }
    return {
        "supplier_id": supplier_id,
        "legal_name": legal_name,
        "aliases": ";".join(a for a in aliases if a),
        "country": country or None,
        "attributes": json.dumps(extra, sort_keys=True, ensure_ascii=False),
    }


def parse_timestamp(value: str, column: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC); None for a blank cell."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _RowError(f"{column} {value!r} is not an ISO 8601 date or date-time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _non_negative_int(value: str, column: str, *, default: int | None = None) -> int:
    value = value.strip()
    if not value and default is not None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a whole number") from None
    if number < 0:
        raise _RowError(f"{column} {number} is negative")
    return number


def read_purchase_orders(fh: BinaryIO, name: str) -> FileRows:
    """Rows of ``purchase_orders.csv``; the latest line of a repeated po_id wins."""
    out = FileRows()
    by_id: dict[str, dict[str, Any]] = {}
    for line, cells, raw in _csv_records(fh, name, ORDER_COLUMNS[:3]):
        raw_text = excerpt(",".join(raw))
        if not cells:
            out.rejected.append(Rejected(line, "row does not match the header's width", raw_text))
            continue
        try:
            row = _order_row(cells)
        except _RowError as exc:
            out.rejected.append(Rejected(line, str(exc), raw_text))
            continue
        row["_source_line"] = line
        by_id[row["po_id"]] = row  # an ERP re-export of an order updates it
    out.rows = list(by_id.values())
    return out


def _order_row(cells: dict[str, str]) -> dict[str, Any]:
    po_id = cells["po_id"].strip()
    supplier_id = cells["supplier_id"].strip()
    if not po_id or not supplier_id:
        raise _RowError("po_id and supplier_id are required")
    ordered_at = parse_timestamp(cells["ordered_at"], "ordered_at")
    if ordered_at is None:
        raise _RowError("ordered_at is empty")
    promised_at = parse_timestamp(cells.get("promised_at", ""), "promised_at")
    received_at = parse_timestamp(cells.get("received_at", ""), "received_at")
    for column, value in (("promised_at", promised_at), ("received_at", received_at)):
        if value is not None and value < ordered_at:
            raise _RowError(f"{column} is before ordered_at")
    amount_text = cells.get("amount", "").strip()
    try:
        amount = float(amount_text) if amount_text else None
    except ValueError:
        raise _RowError(f"amount {amount_text!r} is not a number") from None
    if amount is not None and (amount < 0 or amount != amount or amount == float("inf")):
        raise _RowError(f"amount {amount_text!r} must be a finite non-negative number")
    currency = cells.get("currency", "").strip().upper()
    if currency and not CURRENCY_RE.match(currency):
        raise _RowError(f"currency {currency!r} is not an ISO 4217 code")
    quantity = _non_negative_int(cells.get("quantity", ""), "quantity", default=0)
    rejected = _non_negative_int(cells.get("rejected_quantity", ""), "rejected_quantity", default=0)
    if rejected > quantity:
        raise _RowError(f"rejected_quantity {rejected} is more than quantity {quantity}")
    return {
        "po_id": po_id,
        "supplier_id": supplier_id,
        "ordered_at": ordered_at,
        "promised_at": promised_at,
        "received_at": received_at,
        "amount": amount,
        "currency": currency or None,
        "quantity": quantity,
        "rejected_quantity": rejected,
    }


def list_name(file_name: str) -> str:
    """The screening list a file holds: its name without the suffix."""
    for suffix in SCREENING_SUFFIXES:
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [" ".join(str(v).split()) for v in items if isinstance(v, str | int) and str(v).strip()]


def read_screening(fh: BinaryIO, name: str) -> FileRows:
    """Entries of one screening list file (FollowTheMoney JSON lines, or CSV)."""
    if name.lower().endswith(".csv"):
        return _screening_csv(fh, name)
    out = FileRows()
    reader = codecs.getreader("utf-8")(fh, "strict")
    line = 0
    try:
        for text in reader:
            line += 1
            if not text.strip():
                continue
            try:
                entity = json.loads(text)
            except json.JSONDecodeError as exc:
                out.rejected.append(Rejected(line, f"not JSON: {exc.msg}", excerpt(text)))
                continue
            try:
                out.rows.append({**_ftm_row(entity), "_source_line": line})
            except _RowError as exc:
                out.rejected.append(Rejected(line, str(exc), excerpt(text)))
    except UnicodeDecodeError as exc:
        raise SupplierFileError(f"{name}: not UTF-8 text ({exc.reason})") from None
    return out


def _ftm_row(entity: object) -> dict[str, Any]:
    if not isinstance(entity, dict):
        raise _RowError("not a FollowTheMoney entity (a JSON object)")
    entry_id = entity.get("id")
    props = entity.get("properties")
    if not isinstance(entry_id, str) or not entry_id.strip():
        raise _RowError("entity has no id")
    if not isinstance(props, dict):
        raise _RowError("entity has no properties object")
    names = _strings(props.get("name"))
    if not names:
        raise _RowError("entity has no name")
    aliases = [*names[1:], *_strings(props.get("alias")), *_strings(props.get("previousName"))]
    aliases += _strings(props.get("weakAlias"))
    countries = _strings(props.get("country")) + _strings(props.get("jurisdiction"))
    return {
        "entry_id": entry_id.strip(),
        "entry_schema": str(entity.get("schema") or "") or None,
        "name": names[0],
        "aliases": json.dumps(list(dict.fromkeys(aliases)), ensure_ascii=False),
        "countries": ";".join(dict.fromkeys(c.upper() for c in countries)),
    }


def _screening_csv(fh: BinaryIO, name: str) -> FileRows:
    out = FileRows()
    for line, cells, raw in _csv_records(fh, name, SCREENING_CSV_REQUIRED):
        raw_text = excerpt(",".join(raw))
        if not cells:
            out.rejected.append(Rejected(line, "row does not match the header's width", raw_text))
            continue
        entry_id, entry_name = cells["id"].strip(), " ".join(cells["name"].split())
        if not entry_id or not entry_name:
            out.rejected.append(Rejected(line, "id and name are required", raw_text))
            continue
        aliases = [" ".join(a.split()) for a in cells.get("aliases", "").split(";")]
        countries = [c.strip().upper() for c in cells.get("countries", "").split(";")]
        out.rows.append(
            {
                "entry_id": entry_id,
                "entry_schema": cells.get("schema", "").strip() or None,
                "name": entry_name,
                "aliases": json.dumps([a for a in aliases if a], ensure_ascii=False),
                "countries": ";".join(c for c in countries if c),
                "_source_line": line,
            }
        )
    return out
