"""What ``GET /v1/ops/freshness`` reads, for one API key's tenant, on each target.

- Postgres: as the API's own role (``BIZOS_API_DATABASE_URL``), through the
  ``SECURITY DEFINER`` functions of ops_0005, which take the key hash and answer
  for its tenant alone: the API never reads the ops tables as their owner.
- Embedded: the ops SQLite file, filtered by the key's tenant (one process owns
  the machine; there are no roles to separate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from core.settings import Settings, Target
from opsdb.engine import OpsDatabaseUnavailable
from quality.freshness import TableFreshness, freshness_from, tenant_freshness
from quality.load_log import LoadHistory
from quality.results import CheckRecord, latest_results
from serving.keys import KeyGrant


@dataclass(frozen=True)
class TenantHealth:
    tables: list[TableFreshness]
    checks: list[CheckRecord]


def tenant_health(settings: Settings, grant: KeyGrant, *, now: datetime) -> TenantHealth:
    """Freshness of every source table and the latest check results of the key's tenant;
    OpsDatabaseUnavailable when the ops database cannot be read."""
    if settings.target is Target.POSTGRES:
        return _postgres_health(settings, grant, now=now)
    tables = tenant_freshness(settings, grant.tenant_id, now=now)
    keys = {t.asset_key for t in tables}
    checks = latest_results(settings, tenant_id=grant.tenant_id, asset_keys=keys)
    return TenantHealth(tables, checks)


def _postgres_health(settings: Settings, grant: KeyGrant, *, now: datetime) -> TenantHealth:
    url = settings.api_postgres_url
    if url is None:
        raise OpsDatabaseUnavailable("BIZOS_API_DATABASE_URL is not set: the API has no role")
    ms = int(settings.api_db_timeout_s * 1000)
    try:
        with psycopg.connect(
            url,
            connect_timeout=max(1, round(settings.api_db_timeout_s)),
            options=f"-c statement_timeout={ms}",
            application_name="bizos-api",
        ) as conn:
            loads = conn.execute(
                "SELECT source, table_name, last_success FROM ops.tenant_source_loads(%s)",
                [grant.key_hash],
            ).fetchall()
            results = conn.execute(
                "SELECT asset_key, check_name, passed, blocking, severity, observed_value,"
                " run_id, evaluated_at FROM ops.tenant_check_results(%s)",
                [grant.key_hash],
            ).fetchall()
    except psycopg.Error as exc:
        reason = type(exc).__name__
        raise OpsDatabaseUnavailable(f"the ops database did not answer: {reason}") from exc
    history = LoadHistory(
        last_success={(s, t): at for s, t, at in loads if t is not None and at is not None},
        sources_loaded={s for s, t, _ in loads if t is not None},
    )
    connected = {s for s, t, _ in loads if t is None}
    tables = freshness_from(settings, history, connected, now=now)
    keys = {t.asset_key for t in tables}
    checks = [
        CheckRecord(
            check_name=check,
            asset_key=asset,
            tenant_id=grant.tenant_id,
            passed=passed,
            blocking=blocking,
            severity=severity,
            observed_value=observed,
            run_id=run_id,
            evaluated_at=at,
        )
        for asset, check, passed, blocking, severity, observed, run_id, at in results
        if asset in keys
    ]
    return TenantHealth(tables, checks)
