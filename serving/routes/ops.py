"""Pipeline health of the caller's tenant: how fresh each source is and what its
latest data-quality checks said.

Scope ``scores:read`` (or ``admin``): an app that may read the tenant's scores may
know how current they are; nothing here is another tenant's or a secret. Read
in the thread pool from the ops database (``ops.load_log``, ``ops.check_results``;
on Postgres as the API's role, through functions that take the key:
serving/ops_health.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status

from core.settings import Settings
from opsdb.engine import OpsDatabaseUnavailable
from quality.freshness import NOT_CONNECTED, STALE, TableFreshness
from quality.results import CheckRecord
from serving.deps import ScoresReader
from serving.keys import KeyGrant
from serving.ops_health import tenant_health
from serving.ops_schemas import (
    CheckResultPublic,
    Freshness,
    FreshnessPublic,
    SourceFreshnessPublic,
    TableFreshnessPublic,
)
from serving.problems import RETRY_AFTER_S
from serving.routes.responses import DATA_ERRORS

router = APIRouter(prefix="/v1/ops", tags=["ops"], responses=DATA_ERRORS)


def _check(record: CheckRecord) -> CheckResultPublic:
    return CheckResultPublic(
        check_name=record.check_name,
        passed=record.passed,
        blocking=record.blocking,
        severity=record.severity,
        observed_value=record.observed_value,
        evaluated_at=record.evaluated_at,
        run_id=record.run_id,
    )


def _source(
    source: str, tables: list[TableFreshness], checks: dict[str, list[CheckRecord]]
) -> SourceFreshnessPublic:
    statuses = {t.status for t in tables}
    if statuses == {NOT_CONNECTED}:
        overall = Freshness.not_connected
    elif STALE in statuses or NOT_CONNECTED in statuses:
        overall = Freshness.stale
    else:
        overall = Freshness.fresh
    loads = [t.last_success for t in tables]
    oldest = None if any(x is None for x in loads) else min(x for x in loads if x is not None)
    return SourceFreshnessPublic(
        source=source,
        status=overall,
        window_hours=tables[0].window_hours,
        last_successful_load=oldest if overall is not Freshness.not_connected else None,
        tables=[
            TableFreshnessPublic(
                table=t.table,
                status=Freshness(t.status),
                last_successful_load=t.last_success,
                checks=[_check(c) for c in checks.get(t.asset_key, [])],
            )
            for t in tables
        ],
    )


def freshness_of(settings: Settings, grant: KeyGrant) -> FreshnessPublic:
    now = datetime.now(UTC)
    health = tenant_health(settings, grant, now=now)
    checks: dict[str, list[CheckRecord]] = {}
    for record in health.checks:
        checks.setdefault(record.asset_key, []).append(record)
    by_source: dict[str, list[TableFreshness]] = {}
    for item in health.tables:
        by_source.setdefault(item.source, []).append(item)
    return FreshnessPublic(
        tenant_id=grant.tenant_id,
        as_of=now,
        sources=[_source(s, items, checks) for s, items in by_source.items()],
    )


@router.get("/freshness", summary="Freshness and latest checks of every source of the tenant")
def freshness(request: Request, grant: ScoresReader) -> FreshnessPublic:
    """Per source: its window, last successful load, fresh/stale/not_connected, and
    per table the latest result of each data-quality check. The tenant is the key's."""
    try:
        return freshness_of(request.app.state.settings, grant)
    except OpsDatabaseUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"pipeline health is unavailable: {exc}",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from exc
