"""Check results kept in ``ops.check_results``: written by every check, read back by
the row-count check (the last passing count), the freshness API and the health
dashboard.

Every evaluation is a new row (never updated): the table is the history of a
check, and "the latest result" is a query, not a state to keep in step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from core.settings import Settings
from opsdb.engine import ops_database_exists, transaction
from opsdb.tables import check_results

ERROR = "ERROR"
WARN = "WARN"


@dataclass(frozen=True)
class CheckRecord:
    """One evaluation of one check for one tenant, as kept."""

    check_name: str
    asset_key: str
    tenant_id: str
    passed: bool
    blocking: bool
    severity: str
    observed_value: str | None
    details: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    evaluated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    # Through JSON and back: what a reader gets is what was stored, on both dialects.
    return dict(json.loads(json.dumps(details, default=str)))


def record_results(settings: Settings, records: Iterable[CheckRecord]) -> int:
    """Append ``records`` in one transaction; returns how many were written."""
    rows = [
        {
            "check_name": r.check_name,
            "asset_key": r.asset_key,
            "tenant_id": r.tenant_id,
            "passed": r.passed,
            "blocking": r.blocking,
            "severity": r.severity,
            "observed_value": r.observed_value,
            "details": _jsonable(r.details),
            "run_id": r.run_id,
            "evaluated_at": r.evaluated_at,
        }
        for r in records
    ]
    if rows:
        with transaction(settings) as connection:
            connection.execute(check_results.insert(), rows)
    return len(rows)


def _record(row: sa.Row[Any]) -> CheckRecord:
    return CheckRecord(
        check_name=row.check_name,
        asset_key=row.asset_key,
        tenant_id=row.tenant_id,
        passed=bool(row.passed),
        blocking=bool(row.blocking),
        severity=row.severity,
        observed_value=row.observed_value,
        details=row.details or {},
        run_id=row.run_id,
        evaluated_at=row.evaluated_at,
    )


def last_passing_value(
    settings: Settings, *, check_name: str, asset_key: str, tenant_id: str
) -> str | None:
    """The observed value of the latest passing result of one check of one tenant."""
    if not ops_database_exists(settings):
        return None
    c = check_results.c
    query = (
        sa.select(c.observed_value)
        .where(
            c.tenant_id == tenant_id,
            c.asset_key == asset_key,
            c.check_name == check_name,
            c.passed.is_(True),
        )
        .order_by(c.evaluated_at.desc(), c.id.desc())
        .limit(1)
    )
    with transaction(settings, write=False) as connection:
        value = connection.execute(query).scalar()
    return None if value is None else str(value)


def latest_results(
    settings: Settings, *, tenant_id: str, asset_keys: Iterable[str] | None = None
) -> list[CheckRecord]:
    """The latest result of every check of the tenant (of ``asset_keys`` when given)."""
    if not ops_database_exists(settings):
        return []
    c = check_results.c
    newest = (
        sa.select(sa.func.max(c.id).label("id"))
        .where(c.tenant_id == tenant_id)
        .group_by(c.asset_key, c.check_name)
    )
    if asset_keys is not None:
        newest = newest.where(c.asset_key.in_(list(asset_keys)))
    query = (
        sa.select(check_results)
        .where(c.id.in_(newest.scalar_subquery()))
        .order_by(c.asset_key, c.check_name)
    )
    with transaction(settings, write=False) as connection:
        return [_record(row) for row in connection.execute(query)]


def results_of_run(
    settings: Settings, *, run_id: str, tenant_id: str | None = None
) -> list[CheckRecord]:
    """Every result one run recorded (for one tenant, when given), oldest first."""
    if not ops_database_exists(settings):
        return []
    c = check_results.c
    query = sa.select(check_results).where(c.run_id == run_id).order_by(c.id)
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    with transaction(settings, write=False) as connection:
        return [_record(row) for row in connection.execute(query)]
