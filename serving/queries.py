"""Reads of served data for scripts and the CLI (the API has its own routes)."""

from __future__ import annotations

from typing import Any

from core.contracts.lead_scores import LEAD_SCORES
from core.settings import Settings
from serving.schemas import LeadScorePublic
from serving.store import serving_store


def top_lead_scores(settings: Settings, tenant_id: str, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` best-scored leads of one tenant, as the API's items would be in JSON.

    Reads through the same tenant-scoped path as the API (RLS on Postgres), so the
    demo printout shows exactly what the tenant's key would see. Values are
    JSON-ready (ISO timestamps, reasons as ``{"code", "label", "points", "evidence"}``
    dicts), so they print and serialise as they are. Raises store.NothingPublished
    before any publish.
    """
    rows = serving_store(settings).list_rows(LEAD_SCORES, tenant_id=tenant_id, limit=n)
    return [LeadScorePublic.from_row(row).model_dump(mode="json") for row in rows]
