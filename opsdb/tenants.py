"""The tenant registry (``ops.tenants``): which tenants exist and whether they may run.

A tenant is *active* or *disabled*. Disabled tenants are skipped by every schedule
and sensor and their API keys are refused at once (the key lookup joins this table,
``serving.keys`` and migration ops_0006). A tenant with no row here counts as
active: installs made before the registry have keys and data but no rows, and must
keep working after the upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from core.settings import Settings
from core.tenancy import check_tenant_id
from opsdb.engine import insert, ops_database_exists, transaction
from opsdb.key_changes import confirmed
from opsdb.tables import tenants


class TenantStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class TenantRecord:
    tenant_id: str
    status: TenantStatus
    created_at: datetime
    disabled_at: datetime | None


def register_tenant(settings: Settings, tenant_id: str) -> tuple[TenantRecord, bool]:
    """Add ``tenant_id`` as active, or make a disabled one active again.

    Returns the record and whether anything changed (False: it was already active),
    so ``bizos tenants add`` can be run twice."""
    check_tenant_id(tenant_id)
    now = datetime.now(UTC)
    t = tenants.c
    with transaction(settings) as connection:
        inserted = (
            connection.execute(
                insert(connection, tenants)
                .values(tenant_id=tenant_id, status=TenantStatus.ACTIVE, created_at=now)
                .on_conflict_do_nothing(index_elements=["tenant_id"])
                # rowcount of an INSERT .. ON CONFLICT is not reliable across drivers
                .returning(t.tenant_id)
            ).first()
            is not None
        )
        enabled = 0
        if not inserted:
            enabled = connection.execute(
                tenants.update()
                .where(t.tenant_id == tenant_id, t.status == TenantStatus.DISABLED)
                .values(status=TenantStatus.ACTIVE, disabled_at=None)
            ).rowcount
        row = connection.execute(sa.select(tenants).where(t.tenant_id == tenant_id)).one()
    return _record(row), bool(inserted or enabled)


def disable_tenant(settings: Settings, tenant_id: str) -> bool:
    """Mark ``tenant_id`` disabled (adding its row if it had none); True if it was active.

    The status is part of every key grant the API checks, so keys stop working with
    this commit: API processes that keep checked keys in memory are notified (a
    trigger on ``ops.tenants``) and this returns once each has dropped them
    (opsdb/key_changes.py)."""
    check_tenant_id(tenant_id)
    now = datetime.now(UTC)
    t = tenants.c

    def disable() -> bool:
        with transaction(settings) as connection:
            inserted = (
                connection.execute(
                    insert(connection, tenants)
                    .values(
                        tenant_id=tenant_id,
                        status=TenantStatus.DISABLED,
                        created_at=now,
                        disabled_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["tenant_id"])
                    .returning(t.tenant_id)
                ).first()
                is not None
            )
            if inserted:
                return True
            changed = connection.execute(
                tenants.update()
                .where(t.tenant_id == tenant_id, t.status == TenantStatus.ACTIVE)
                .values(status=TenantStatus.DISABLED, disabled_at=now)
            ).rowcount
        return bool(changed)

    return confirmed(settings, lambda changed: [f"tenant:{tenant_id}"] if changed else [], disable)


def forget_tenant(settings: Settings, tenant_id: str) -> bool:
    """Delete the tenant's row (``bizos tenants remove``, after its data); True if it had one."""
    check_tenant_id(tenant_id)
    if not ops_database_exists(settings):
        return False
    with transaction(settings) as connection:
        return bool(
            connection.execute(tenants.delete().where(tenants.c.tenant_id == tenant_id)).rowcount
        )


def list_tenant_records(settings: Settings) -> list[TenantRecord]:
    """Every registered tenant, by id."""
    if not ops_database_exists(settings):
        return []
    with transaction(settings, write=False) as connection:
        rows = connection.execute(sa.select(tenants).order_by(tenants.c.tenant_id)).all()
    return [_record(r) for r in rows]


def disabled_tenants(settings: Settings) -> set[str]:
    """Tenants that must not run; everything else (registered or not) may."""
    if not ops_database_exists(settings):
        return set()
    t = tenants.c
    with transaction(settings, write=False) as connection:
        query = sa.select(t.tenant_id).where(t.status == TenantStatus.DISABLED)
        rows = connection.execute(query).tuples().all()
    return {str(row[0]) for row in rows}


def runnable(settings: Settings, tenant_ids: Iterable[str]) -> list[str]:
    """``tenant_ids`` without the disabled ones, in their order: what schedules request."""
    disabled = disabled_tenants(settings)
    return [t for t in tenant_ids if t not in disabled]


def _record(row: sa.Row[Any]) -> TenantRecord:
    mapping = row._mapping
    return TenantRecord(
        tenant_id=mapping["tenant_id"],
        status=TenantStatus(mapping["status"]),
        created_at=mapping["created_at"],
        disabled_at=mapping["disabled_at"],
    )
