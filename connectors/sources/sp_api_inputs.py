"""What the SP-API connector searches the catalog for: the tenant's sourcing keywords
and the identifiers in its supplier price lists."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.settings import PROJECT_ROOT, Settings
from core.tenant_config import load_tenant_file
from lake.files import find, lake_root, parquet_file, partition_dir

log = logging.getLogger(__name__)

DEFAULT_MARKETPLACE = "ATVPDKIKX0DER"  # amazon.com
CONFIG_DIR = PROJECT_ROOT / "config" / "sourcing"


class SourcingSearch(BaseModel):
    """The keys of ``config/sourcing/<tenant>.yaml`` this connector reads; the rest of
    the file (cost assumptions) belongs to the sourcing models."""

    model_config = ConfigDict(extra="ignore")

    marketplace_id: str = Field(default=DEFAULT_MARKETPLACE, pattern=r"^[A-Z0-9]{10,16}$")
    keywords: list[str] = Field(default_factory=list)


class SourcingConfigError(ValueError):
    """A sourcing configuration file that cannot be read; names the file and key."""


def search_config(tenant_id: str, config_dir: Path = CONFIG_DIR) -> SourcingSearch:
    """The tenant's marketplace and keywords (its own file, else ``default.yaml``,
    else the US marketplace and no keywords)."""
    if (
        not (config_dir / f"{tenant_id}.yaml").exists()
        and not (config_dir / "default.yaml").exists()
    ):
        return SourcingSearch()
    return load_tenant_file(
        config_dir, tenant_id, SourcingSearch, what="sourcing config", error=SourcingConfigError
    )


def split_keywords(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b, c"]`` as distinct, trimmed phrases in their order."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: dict[str, None] = {}
    for item in items:
        for part in str(item).split(","):
            phrase = " ".join(part.split())
            if phrase:
                out.setdefault(phrase, None)
    return list(out)


UPC = re.compile(r"^\d{12}$")
EAN = re.compile(r"^\d{13}$")
ASIN = re.compile(r"^[0-9A-Z]{10}$")
IDENTIFIER_SHAPES = {"ASIN": ASIN, "UPC": UPC, "EAN": EAN}
PRICE_LIST_SUFFIXES = (".csv", ".xlsx")


def _norm_header(name: Any) -> str:
    return "_".join(str(name or "").strip().lower().split())


def _identifier(kind: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if kind != "ASIN" and text.endswith(".0"):  # a spreadsheet that made it a number
        text = text[:-2]
    text = text.upper() if kind == "ASIN" else text
    return text if IDENTIFIER_SHAPES[kind].match(text) else None


def _rows_of(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            names = [_norm_header(h) for h in header]
            for row in reader:
                yield dict(zip(names, row, strict=False))
        return
    try:
        import openpyxl
    except ImportError:
        log.warning("%s: openpyxl is not installed, its identifiers are not searched", path.name)
        return
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        names = [_norm_header(h) for h in header]
        for values in rows:
            yield dict(zip(names, values, strict=False))
    finally:
        book.close()


def price_list_identifiers(settings: Settings, tenant_id: str) -> dict[str, list[str]]:
    """The UPCs, EANs and ASINs of the tenant's supplier price lists, by type.

    From the landed price lists (``lake/price_lists/items``) when there are any:
    those rows passed the full check. Else straight from the files in
    ``inbox/<tenant>/price_lists/``, reading only the identifier columns and
    skipping any value that is not an identifier's shape: the full parse, with
    its quarantine, is the price-list loader's job; this only decides what to ask
    the catalog for.
    """
    found: dict[str, dict[str, None]] = {kind: {} for kind in IDENTIFIER_SHAPES}

    def add(row: Mapping[str, Any]) -> None:
        for kind in IDENTIFIER_SHAPES:
            value = _identifier(kind, row.get(kind.lower()))
            if value is not None:
                found[kind].setdefault(value, None)

    # The price-list loader's layout is its own (one file or month partitions):
    # every Parquet file under the tenant's folder, identifier columns only.
    landed_dir = partition_dir(lake_root(settings), "price_lists", "items", tenant=tenant_id)
    landed = find(landed_dir, "**/*.parquet")
    if landed:
        for path in landed:
            parquet = parquet_file(path)
            wanted = [c for c in ("upc", "ean", "asin") if c in parquet.schema_arrow.names]
            for row in parquet.read(columns=wanted).to_pylist():
                add(row)
    else:
        folder = settings.tenant_inbox(tenant_id) / "price_lists"
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        for path in files:
            if path.is_symlink() or not path.is_file():
                continue
            if path.suffix.lower() not in PRICE_LIST_SUFFIXES or path.name.startswith("."):
                continue
            try:
                for row in _rows_of(path):
                    add(row)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("%s: identifiers not read (%s)", path.name, type(exc).__name__)
    return {kind: sorted(values) for kind, values in found.items() if values}
