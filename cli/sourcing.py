"""The sourcing part of the CLI: a tenant's top opportunities as its API key reads them."""

from __future__ import annotations

import sys
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from core.contracts.sourcing_opportunities import SOURCING_OPPORTUNITIES
from core.settings import Settings
from serving.sourcing_schemas import SourcingOpportunityPublic
from serving.store import NothingPublished, serving_store

# As wide as cli/main.py's console when the output is not a terminal (a log file).
console = Console(width=None if sys.stdout.isatty() else 120)


def top_opportunities(settings: Settings, tenant_id: str, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` best opportunities of one tenant, as the API's items would be in JSON.

    Read through the same tenant-scoped path as the API (RLS on Postgres), in the
    API's order; empty when nothing was ever published."""
    try:
        rows = serving_store(settings).list_rows(
            SOURCING_OPPORTUNITIES, tenant_id=tenant_id, limit=n
        )
    except NothingPublished:
        return []
    return [SourcingOpportunityPublic.from_row(row).model_dump(mode="json") for row in rows]


def _money(value: object) -> str:
    return "" if value is None else f"{value:,.2f}"


def print_top_opportunities(settings: Settings, tenant_id: str, n: int = 5) -> None:
    """Score, margin, estimated units, supplier and its tier, review flag, top reasons."""
    found = top_opportunities(settings, tenant_id, n)
    if not found:
        console.print(f"[bold]{tenant_id}[/]: no sourcing data yet (no SP-API items matched)")
        return
    table = Table(
        title=f"{tenant_id}: top {n} sourcing opportunities (as the API serves them)",
        title_justify="left",
        caption="score ? = a weak estimate (no sales rank, or few days of offers)",
        caption_justify="left",
    )
    # Numbers stay whole on one line; the title and the reasons take what is left.
    texts = ("asin", "title", "supplier", "review", "top reasons")
    for col in ("asin", "title", "score", "margin", "price", "landed", "units/mo", *texts[2:]):
        wraps = col in {"title", "top reasons"}
        ratio = (3 if col == "top reasons" else 2) if wraps else None
        justify: Literal["left", "right"] = "left" if col in texts else "right"
        table.add_column(col, justify=justify, no_wrap=not wraps, ratio=ratio)
    for row in found:
        supplier = row["supplier"] or {}
        tier = supplier.get("tier")
        strong = row["confidence"] == "high"
        table.add_row(
            row["asin"],
            str(row["title"] or ""),
            "" if row["score"] is None else f"{row['score']}{'' if strong else ' ?'}",
            "" if row["margin_pct"] is None else f"{row['margin_pct']:.1f}%",
            _money(row["price"]),
            _money(row["landed_cost"]),
            "" if row["est_monthly_units"] is None else str(row["est_monthly_units"]),
            f"{supplier.get('supplier_id')} ({tier})" if tier else "none usable",
            "required" if row["review_required"] else "",
            ", ".join(f"{r['code']}\u00a0{r['points']:+d}" for r in row["reasons"][:3]),
        )
    console.print(table)
