"""Response models of the ops routes (``...Public`` leaves the platform)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Freshness(StrEnum):
    fresh = "fresh"
    stale = "stale"
    not_connected = "not_connected"


class CheckResultPublic(BaseModel):
    """The latest result of one data-quality check of the table."""

    check_name: str
    passed: bool
    blocking: bool
    severity: str = Field(description="ERROR (blocks when blocking) or WARN")
    observed_value: str | None
    evaluated_at: datetime
    run_id: str | None


class TableFreshnessPublic(BaseModel):
    table: str
    status: Freshness
    last_successful_load: datetime | None
    checks: list[CheckResultPublic]


class SourceFreshnessPublic(BaseModel):
    source: str
    status: Freshness = Field(
        description="stale when any table has no successful load within the window; "
        "not_connected when the tenant never connected the source"
    )
    window_hours: float
    last_successful_load: datetime | None = Field(
        description="the oldest of its tables' last successful loads (null: a table never "
        "loaded successfully)"
    )
    tables: list[TableFreshnessPublic]


class FreshnessPublic(BaseModel):
    tenant_id: str
    as_of: datetime
    sources: list[SourceFreshnessPublic]
