"""Reading a supplier price list (CSV or XLSX) a row at a time: rows out, bad rows named.

Columns: ``supplier_id, supplier_sku, upc, ean, asin, unit_cost, currency, moq,
lead_time_days``. Header names are matched without regard to case, spaces or
hyphens (``Unit Cost`` is ``unit_cost``); other columns are ignored. A row needs
its supplier, SKU, a positive cost in a currency the tenant has a rate for, and
at least one identifier, each of which must be valid (sourcing/identifiers.py).

Both readers stream: the CSV through the csv module over the open file, the
workbook through openpyxl's read-only mode (rows parsed as they are reached,
the sheet never held whole). A file that cannot be read at all (no header, a
required column missing, not UTF-8, not a workbook) raises
:class:`PriceListFileError` and is quarantined whole by the caller; a bad row
is quarantined alone with its line (the sheet's row number for a workbook).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from sourcing.identifiers import IdentifierError, check_asin, check_ean, check_upc

EXCERPT_CHARS = 2048
SUFFIXES = (".csv", ".xlsx")
COLUMNS = (
    "supplier_id",
    "supplier_sku",
    "upc",
    "ean",
    "asin",
    "unit_cost",
    "currency",
    "moq",
    "lead_time_days",
)
REQUIRED = ("supplier_id", "supplier_sku", "unit_cost", "currency")
IDENTIFIERS = ("upc", "ean", "asin")
MAX_COST = Decimal("1000000")


class PriceListFileError(ValueError):
    """A file that cannot be read at all; the message says why."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    raw: str


@dataclass
class PriceListRows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class _RowError(ValueError):
    pass


def column_name(header: object) -> str:
    """A header cell as a column name: ``" Unit-Cost "`` is ``unit_cost``."""
    text = "" if header is None else str(header)
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def excerpt(cells: Iterable[object]) -> str:
    raw = ",".join("" if c is None else str(c) for c in cells)
    return raw if len(raw) <= EXCERPT_CHARS else raw[:EXCERPT_CHARS] + "…"


def _cell(value: object) -> str:
    """A cell as text; whole numbers from a workbook without their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _identifier_cell(value: object, width: int) -> str:
    """A workbook stores a UPC typed as a number without its leading zeros: put
    them back (only for numbers; text is taken as written)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _cell(value).zfill(width)
    return _cell(value)


def _cost(text: str) -> Decimal:
    try:
        cost = Decimal(text.replace(",", "")) if text else None
    except InvalidOperation:
        raise _RowError(f"unit_cost {text!r} is not a number") from None
    if cost is None:
        raise _RowError("unit_cost is empty")
    if not cost.is_finite() or cost <= 0:
        raise _RowError(f"unit_cost {text!r} must be a positive amount")
    if cost > MAX_COST:
        raise _RowError(f"unit_cost {text!r} is over {MAX_COST}")
    return cost


def _whole(text: str, column: str, *, minimum: int, default: int | None) -> int | None:
    if not text:
        return default
    try:
        number = int(Decimal(text))
        if Decimal(text) != number:
            raise ValueError
    except (InvalidOperation, ValueError):
        raise _RowError(f"{column} {text!r} is not a whole number") from None
    if number < minimum:
        raise _RowError(f"{column} {number} is below {minimum}")
    return number


def price_list_row(cells: dict[str, object], currencies: frozenset[str]) -> dict[str, Any]:
    """One row's values checked and normalised; _RowError with the reason otherwise."""
    supplier_id = _cell(cells.get("supplier_id"))
    sku = _cell(cells.get("supplier_sku"))
    if not supplier_id:
        raise _RowError("supplier_id is empty")
    if not sku:
        raise _RowError("supplier_sku is empty")
    if len(supplier_id) > 200 or len(sku) > 200:
        raise _RowError("supplier_id or supplier_sku is longer than 200 characters")
    ids: dict[str, str | None] = {}
    try:
        upc = _identifier_cell(cells.get("upc"), 12)
        ean = _identifier_cell(cells.get("ean"), 13)
        asin = _cell(cells.get("asin"))
        ids["upc"] = check_upc(upc) if upc else None
        ids["ean"] = check_ean(ean) if ean else None
        ids["asin"] = check_asin(asin) if asin else None
    except IdentifierError as exc:
        raise _RowError(str(exc)) from None
    if not any(ids.values()):
        raise _RowError("no identifier: one of upc, ean or asin is needed to match a product")
    cost = _cost(_cell(cells.get("unit_cost")))
    currency = _cell(cells.get("currency")).upper()
    if currency not in currencies:
        raise _RowError(
            f"currency {currency or '(empty)'!r} has no exchange rate in the tenant's "
            f"sourcing configuration (has {', '.join(sorted(currencies))})"
        )
    return {
        "supplier_id": supplier_id,
        "supplier_sku": sku,
        **ids,
        "unit_cost": format(cost, "f"),  # plain decimal text, as written (1E+2 is 100)
        "currency": currency,
        "moq": _whole(_cell(cells.get("moq")), "moq", minimum=1, default=1),
        "lead_time_days": _whole(
            _cell(cells.get("lead_time_days")), "lead_time_days", minimum=0, default=None
        ),
    }


def _check_header(header: list[str], name: str) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise PriceListFileError(
            f"{name}: header lacks column(s) {', '.join(missing)} (has {', '.join(header)})"
        )
    if not any(c in header for c in IDENTIFIERS):
        raise PriceListFileError(f"{name}: header has no identifier column (upc, ean or asin)")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise PriceListFileError(f"{name}: header repeats column(s) {', '.join(dupes)}")


def _collect(
    records: Iterator[tuple[int, list[object]]], name: str, currencies: frozenset[str]
) -> PriceListRows:
    """Rows from (line, cells) records, the first one the header."""
    out = PriceListRows()
    try:
        _, first = next(records)
    except StopIteration:
        raise PriceListFileError(f"{name}: empty file, no header") from None
    header = [column_name(h) for h in first]
    _check_header(header, name)
    seen: dict[tuple[str, str], int] = {}
    for line, cells in records:
        if not any(_cell(c) for c in cells):
            continue
        raw = excerpt(cells)
        if len(cells) > len(header) and any(_cell(c) for c in cells[len(header) :]):
            out.rejected.append(
                Rejected(line, f"{len(cells)} fields where the header has {len(header)}", raw)
            )
            continue
        by_name = {h: c for h, c in zip(header, cells, strict=False) if h}
        try:
            row = price_list_row(by_name, currencies)
        except _RowError as exc:
            out.rejected.append(Rejected(line, str(exc), raw))
            continue
        key = (row["supplier_id"], row["supplier_sku"])
        if key in seen:
            out.rejected.append(
                Rejected(
                    line, f"supplier_sku {key[1]!r} of {key[0]!r} repeats line {seen[key]}", raw
                )
            )
            continue
        seen[key] = line
        out.rows.append({**row, "_source_line": line})
    return out


def _csv_records(fh: BinaryIO, name: str) -> Iterator[tuple[int, list[object]]]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")
    try:
        reader = csv.reader(text)
        for cells in reader:
            yield reader.line_num, list(cells)
    except UnicodeDecodeError as exc:
        raise PriceListFileError(
            f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise PriceListFileError(f"{name}: not a readable CSV file ({exc})") from None
    finally:
        text.detach()


def _xlsx_records(fh: BinaryIO, name: str) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(fh, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise PriceListFileError(f"{name}: not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise PriceListFileError(f"{name}: the workbook has no sheet")
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(values)
    finally:
        book.close()


def read_price_list(fh: BinaryIO, name: str, currencies: frozenset[str]) -> PriceListRows:
    """Rows of one price-list file (CSV or XLSX by its suffix)."""
    if name.lower().endswith(".xlsx"):
        return _collect(_xlsx_records(fh, name), name, currencies)
    return _collect(_csv_records(fh, name), name, currencies)
