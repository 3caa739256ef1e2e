"""How fresh each source of a tenant is: its tables' last successful loads (from
``ops.load_log``) against the source's window.

A window is the source's cadence plus slack: Stripe and the CRM load hourly, so
two hours without a successful load means a run failed or did not start; GA4
and the catalogs load daily, so 26 hours. ``BIZOS_FRESHNESS_HOURS`` overrides
any of them. A source the tenant never connected (no credential, no load ever)
is ``not_connected``, not stale: a tenant without a shop is not late with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import credentials
from connectors.sources import SOURCES
from core.settings import Settings
from quality.load_log import LoadHistory, load_history
from quality.results import WARN, CheckRecord

FRESHNESS = "freshness"
DEFAULT_WINDOW_HOURS = 26.0
WINDOW_HOURS: dict[str, float] = {"stripe": 2.0, "crm_api": 2.0, "ga4": 26.0}

FRESH, STALE, NOT_CONNECTED = "fresh", "stale", "not_connected"


def window_hours(settings: Settings, source: str) -> float:
    return settings.freshness_hours.get(source, WINDOW_HOURS.get(source, DEFAULT_WINDOW_HOURS))


@dataclass(frozen=True)
class TableFreshness:
    source: str
    table: str
    last_success: datetime | None
    window_hours: float
    status: str

    @property
    def asset_key(self) -> str:
        return f"{self.source}/{self.table}"


def tenant_freshness(
    settings: Settings, tenant_id: str, *, now: datetime | None = None
) -> list[TableFreshness]:
    """Every table of every source, for one tenant, as of ``now``."""
    history = load_history(settings, tenant_id=tenant_id)
    connected = {c.source for c in credentials.list_credentials(settings, tenant_id)}
    return freshness_from(settings, history, connected, now=now)


def freshness_from(
    settings: Settings,
    history: LoadHistory,
    connected: set[str],
    *,
    now: datetime | None = None,
) -> list[TableFreshness]:
    """Every table of every source from the tenant's load history and the sources it
    stored a credential for (the API reads those through its own role)."""
    now = now or datetime.now(UTC)
    out = []
    for source, definition in SOURCES.items():
        hours = window_hours(settings, source)
        for table in definition.tables:
            seen = history.last_success.get((source, table))
            if source not in connected and source not in history.sources_loaded:
                status = NOT_CONNECTED
            elif seen is not None and now - seen <= timedelta(hours=hours):
                status = FRESH
            else:
                status = STALE
            out.append(TableFreshness(source, table, seen, hours, status))
    return out


def freshness_record(item: TableFreshness, *, tenant_id: str, run_id: str | None) -> CheckRecord:
    """The kept result of one table's freshness: fails only when stale; never blocks
    (an old load is still the best data there is), so its severity is WARN."""
    age = None
    if item.last_success is not None:
        age = round((datetime.now(UTC) - item.last_success).total_seconds() / 3600, 3)
    return CheckRecord(
        check_name=FRESHNESS,
        asset_key=item.asset_key,
        tenant_id=tenant_id,
        passed=item.status != STALE,
        blocking=False,
        severity=WARN,
        observed_value=item.status
        if item.last_success is None
        else f"{item.status}: last successful load {item.last_success.isoformat()}",
        details={
            "status": item.status,
            "last_success": item.last_success.isoformat() if item.last_success else None,
            "age_hours": age,
            "window_hours": item.window_hours,
        },
        run_id=run_id,
    )
