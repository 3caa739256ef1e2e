"""`bizos tenants`: add, list, disable, remove (pipelines/tenant_lifecycle.py).

``disable`` takes effect on the API's next request (the key lookup reads the
tenant's status every time) and on the next schedule tick; ``remove`` deletes the
tenant's data everywhere and asks for ``--yes`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.settings import get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from core.settings import Settings

tenants_app = typer.Typer(help="Tenants: add, list, disable, remove.", no_args_is_help=True)
console = Console(width=120)

TenantArg = Annotated[str, typer.Argument(help="tenant id (lowercase letters, digits, -)")]


def _instance(settings: Settings) -> DagsterInstance:
    from pipelines.runner import dagster_instance

    return dagster_instance(settings)


def _checked(tenant: str) -> str:
    from core.tenancy import InvalidTenantId, check_tenant_id

    try:
        return check_tenant_id(tenant)
    except InvalidTenantId as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@tenants_app.command("add")
def tenants_add(tenant: TenantArg) -> None:
    """Add TENANT (or re-enable a disabled one): registry row, Dagster partition, inbox."""
    from pipelines.tenant_lifecycle import add_tenant

    settings = get_settings()
    tenant_id = _checked(tenant)
    changed = add_tenant(settings, _instance(settings), tenant_id)
    console.print(f"tenant {tenant_id}: {'added' if changed else 'already active'}")
    console.print(
        f"  inbox {settings.tenant_inbox(tenant_id)}\n"
        f"  next: bizos credentials set --tenant {tenant_id} --source <source> < secret-file\n"
        f"        bizos keys create --tenant {tenant_id}"
    )


@tenants_app.command("list")
def tenants_list() -> None:
    """Every tenant any store knows, with its status, partition, keys and credentials."""
    from pipelines.tenant_lifecycle import overview

    settings = get_settings()
    table = Table("tenant", "status", "partition", "inbox", "keys", "credentials", "config")
    for row in overview(settings, _instance(settings)):
        table.add_row(
            row.tenant_id,
            row.status,
            "yes" if row.partition else "no",
            "yes" if row.inbox else "no",
            str(row.active_keys),
            " ".join(row.credentials) or "-",
            " ".join(row.config_files) or "default",
        )
    console.print(table)


@tenants_app.command("disable")
def tenants_disable(tenant: TenantArg) -> None:
    """Disable TENANT: its API keys fail at once, schedules and sensors skip it.
    Its data stays; `bizos tenants add TENANT` enables it again."""
    from pipelines.tenant_lifecycle import disable

    tenant_id = _checked(tenant)
    changed = disable(get_settings(), tenant_id)
    console.print(f"tenant {tenant_id}: {'disabled' if changed else 'already disabled'}")


@tenants_app.command("remove")
def tenants_remove(
    tenant: TenantArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="confirm: the tenant's data cannot be brought back")
    ] = False,
) -> None:
    """Delete TENANT and its data: lake, warehouse and serving rows, keys, credentials,
    cursors, configuration files, inbox and Dagster partition."""
    from pipelines.tenant_lifecycle import TenantLifecycleError, remove_tenant

    settings = get_settings()
    tenant_id = _checked(tenant)
    try:
        removal = remove_tenant(settings, _instance(settings), tenant_id, confirmed=yes)
    except TenantLifecycleError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    removed = ", ".join(f"{what} {n}" for what, n in removal.removed.items())
    console.print(f"tenant {tenant_id} removed: {removed}")
