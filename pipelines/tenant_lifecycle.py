"""Adding, disabling and removing a tenant, with everything that names it kept in step.

A tenant lives in several places: its registry row (``opsdb.tenants``), its Dagster
partition, its inbox folder, its lake partitions, its warehouse and serving rows,
its API keys, its stored credentials, its connector cursors and its configuration
files (``config/<domain>/<tenant>.yaml``). These functions are the one place that
knows the list, so ``bizos tenants`` never leaves a tenant half added or half
removed. Each step is idempotent: a removal that stopped half way is finished by
running it again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlalchemy as sa
from dagster import DagsterInstance
from psycopg import sql

import credentials
from assets.partitions import tenants as tenant_partitions
from core.contracts.serving_tables import SERVING_TABLES
from core.settings import PROJECT_ROOT, Settings, Target
from core.tenancy import check_tenant_id
from exports.inbox import tenants_with_inbox
from lake.duckdb_s3 import connect_warehouse
from lake.files import find, lake_root, remove_tree
from opsdb.engine import ops_database_exists, transaction
from opsdb.tables import api_keys, connector_cursors
from opsdb.tenants import (
    TenantStatus,
    disable_tenant,
    forget_tenant,
    list_tenant_records,
    register_tenant,
)
from serving.keys import list_keys
from serving.store import serving_store
from warehouse.dbt_runs import warehouse_lock

log = logging.getLogger(__name__)

CONFIG_ROOT = PROJECT_ROOT / "config"
"""Per-tenant configuration: ``config/<domain>/<tenant>.yaml`` (core/tenant_config.py)."""
PARTITIONS = tenant_partitions.name or "tenants"
ACTOR = "bizos tenants"
# Warehouse schemas whose tables are the platform's own, not per-tenant data; the
# ops and serving rows are removed through their own stores.
NOT_WAREHOUSE = ("information_schema", "pg_catalog", "pg_toast", "ops", "serving")


class TenantLifecycleError(ValueError):
    """A tenant operation that cannot be done as asked (unknown tenant, no --yes)."""


@dataclass
class TenantOverview:
    """One tenant as every store sees it: what ``bizos tenants list`` prints."""

    tenant_id: str
    status: str
    partition: bool
    inbox: bool
    active_keys: int
    credentials: list[str]
    config_files: list[str]


@dataclass
class Removal:
    """What ``remove`` deleted, per store, so the operator sees it was complete."""

    tenant_id: str
    removed: dict[str, int | str] = field(default_factory=dict)


def config_files(tenant_id: str, root: Path = CONFIG_ROOT) -> list[Path]:
    """The tenant's own configuration files, one per domain that has one."""
    return sorted(root.glob(f"*/{check_tenant_id(tenant_id)}.yaml"))


def add_tenant(settings: Settings, instance: DagsterInstance, tenant_id: str) -> bool:
    """Register (or re-enable) the tenant, add its partition and its inbox folder.

    True when something changed. A tenant with no configuration file of its own
    uses ``config/<domain>/default.yaml``; credentials and keys are added with
    ``bizos credentials set`` and ``bizos keys create`` (docs/operations.md)."""
    check_tenant_id(tenant_id)
    _, changed = register_tenant(settings, tenant_id)
    if not instance.has_dynamic_partition(PARTITIONS, tenant_id):
        instance.add_dynamic_partitions(PARTITIONS, [tenant_id])
        changed = True
    inbox = settings.tenant_inbox(tenant_id)
    if not inbox.is_dir():
        inbox.mkdir(parents=True)
        changed = True
    return changed


def disable(settings: Settings, tenant_id: str) -> bool:
    """Disable the tenant: keys refused from now, schedules and sensors skip it.

    Its data and partition stay, so ``add`` brings it back as it was."""
    return disable_tenant(settings, check_tenant_id(tenant_id))


def overview(settings: Settings, instance: DagsterInstance) -> list[TenantOverview]:
    """Every tenant any store knows of, so one left behind by a crash shows up too."""
    records = {r.tenant_id: r for r in list_tenant_records(settings)}
    partitions = set(instance.get_dynamic_partitions(PARTITIONS))
    inboxes = set(tenants_with_inbox(settings))
    keys = list_keys(settings)
    stored = credentials.list_credentials(settings) if ops_database_exists(settings) else []
    known = set(records) | partitions | inboxes | {k.tenant_id for k in keys}
    known |= {c.tenant_id for c in stored}
    rows = []
    for tenant_id in sorted(known):
        record = records.get(tenant_id)
        rows.append(
            TenantOverview(
                tenant_id=tenant_id,
                status=record.status.value if record else f"{TenantStatus.ACTIVE} (unregistered)",
                partition=tenant_id in partitions,
                inbox=tenant_id in inboxes,
                active_keys=sum(
                    1 for k in keys if k.tenant_id == tenant_id and k.state == "active"
                ),
                credentials=sorted(c.source for c in stored if c.tenant_id == tenant_id),
                config_files=[
                    str(p.relative_to(CONFIG_ROOT.parent)) for p in config_files(tenant_id)
                ],
            )
        )
    return rows


def remove_tenant(
    settings: Settings,
    instance: DagsterInstance,
    tenant_id: str,
    *,
    confirmed: bool,
    config_root: Path = CONFIG_ROOT,
) -> Removal:
    """Delete everything of the tenant; refused unless ``confirmed`` (``--yes``).

    The tenant is disabled first, so its keys stop and no schedule starts a run
    while its data goes; the registry row goes last, so a removal interrupted half
    way still shows the tenant (disabled) and is finished by running it again."""
    check_tenant_id(tenant_id)
    if not confirmed:
        raise TenantLifecycleError(
            f"removing tenant {tenant_id} deletes its data, keys and credentials: "
            "confirm with --yes"
        )
    removal = Removal(tenant_id)
    out = removal.removed
    disable_tenant(settings, tenant_id)
    if instance.has_dynamic_partition(PARTITIONS, tenant_id):
        instance.delete_dynamic_partition(PARTITIONS, tenant_id)
        out["dagster partition"] = 1
    out["inbox folders"] = _rmtree_all([settings.tenant_inbox(tenant_id)])
    out["lake folders"] = _remove_lake_folders(settings, tenant_id)
    out["serving rows"] = _clear_serving(settings, tenant_id)
    out["warehouse rows"] = _clear_warehouse(settings, tenant_id)
    out["credentials"] = sum(
        credentials.delete_secret(settings, tenant_id=tenant_id, source=c.source, actor=ACTOR)
        for c in credentials.list_credentials(settings, tenant_id)
    )
    with transaction(settings) as connection:
        out["api keys"] = connection.execute(
            api_keys.delete().where(api_keys.c.tenant_id == tenant_id)
        ).rowcount
        out["cursors"] = connection.execute(
            connector_cursors.delete().where(connector_cursors.c.tenant_id == tenant_id)
        ).rowcount
    files = config_files(tenant_id, config_root)
    for path in files:
        path.unlink()
    out["config files"] = len(files)
    forget_tenant(settings, tenant_id)
    log.info("removed tenant %s: %s", tenant_id, out)
    return removal


def _remove_lake_folders(settings: Settings, tenant_id: str) -> int:
    """Every ``tenant=<id>`` folder of the lake (tables and quarantine), local or S3."""
    folders = [p for p in find(lake_root(settings), f"**/tenant={tenant_id}") if p.is_dir()]
    for folder in folders:
        remove_tree(folder)
    return len(folders)


def _rmtree_all(paths: list[Path]) -> int:
    count = 0
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            count += 1
    return count


def _clear_serving(settings: Settings, tenant_id: str) -> int:
    """Publish an empty table for the tenant on every serving table it has rows in.

    Through the store's own publish, so readers see the rows go in one step on
    either store, exactly as they see a new publish."""
    store = serving_store(settings)
    removed = 0
    for contract in SERVING_TABLES.values():
        if not _has_serving_rows(settings, contract.name, tenant_id):
            continue
        result = store.publish(contract, tenant_id=tenant_id, table=contract.schema.empty_table())
        removed += result.rows_replaced
    return removed


def _has_serving_rows(settings: Settings, table: str, tenant_id: str) -> bool:
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url, connect_timeout=10) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", [f"serving.{table}"]).fetchone()
            if not exists or exists[0] is None:
                return False
            found = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE tenant_id = %s LIMIT 1").format(
                    sql.Identifier("serving", table)
                ),
                [tenant_id],
            ).fetchone()
            return found is not None
    from serving.duckdb_store import tenant_file

    return tenant_file(settings.serving_dir, table, tenant_id).exists()


def _clear_warehouse(settings: Settings, tenant_id: str) -> int:
    """Delete the tenant's rows from every warehouse table with a ``tenant_id`` column.

    Staging tables on DuckDB (copies of the lake) are among them; views over the
    lake need nothing, their files are gone. Under the warehouse
    writer lock, as a dbt build would be."""
    with warehouse_lock(settings, run_id=f"tenants-remove:{tenant_id}", log=log.warning):
        if settings.target is Target.POSTGRES:
            return _clear_postgres_warehouse(settings, tenant_id)
        if not settings.warehouse_path.exists():
            return 0
        with connect_warehouse(settings) as conn:
            tables = conn.execute(
                "SELECT c.table_schema, c.table_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
                "WHERE c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'"
            ).fetchall()
            removed = 0
            for schema, table in tables:
                if schema in NOT_WAREHOUSE:
                    continue
                row = conn.execute(
                    f'DELETE FROM "{schema}"."{table}" WHERE tenant_id = ?', [tenant_id]
                ).fetchone()
                removed += int(row[0]) if row else 0
            return removed


def _clear_postgres_warehouse(settings: Settings, tenant_id: str) -> int:
    engine = sa.create_engine(
        settings.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1),
        poolclass=sa.NullPool,
    )
    try:
        with engine.begin() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT c.table_schema, c.table_name FROM information_schema.columns c "
                    "JOIN information_schema.tables t USING (table_schema, table_name) "
                    "WHERE c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' "
                    "AND NOT (c.table_schema = ANY(:skip))"
                ),
                {"skip": list(NOT_WAREHOUSE)},
            ).all()
            removed = 0
            quoted = conn.dialect.identifier_preparer
            for schema, table in tables:
                name = f"{quoted.quote_schema(str(schema))}.{quoted.quote(str(table))}"
                removed += conn.execute(
                    sa.text(f"DELETE FROM {name} WHERE tenant_id = :t"),
                    {"t": tenant_id},
                ).rowcount
            return removed
    finally:
        engine.dispose()
