"""The integration sources, by name: what ``bizos ingest --source S`` accepts."""

from __future__ import annotations

from connectors.connector import SourceDef
from connectors.sources import ai_usage, cms_forms, crm_api, ga4, saleor, sp_api, stripe

SOURCES: dict[str, SourceDef] = {
    s.name: s
    for s in (
        stripe.SOURCE,
        ga4.SOURCE,
        crm_api.SOURCE,
        saleor.SOURCE,
        cms_forms.SOURCE,
        ai_usage.SOURCE,
        sp_api.SOURCE,
    )
}


def get_source(name: str) -> SourceDef:
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown source {name!r}: one of {known}") from None


def source_tables(name: str) -> list[str]:
    """The tables of a source in load order (one Dagster asset each)."""
    return list(get_source(name).tables)
