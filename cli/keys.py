"""`bizos keys`: the API's keys (create, list, revoke) and its own database login role.

A key is printed once by ``create`` and never again: ``list`` and ``revoke`` name keys
by their prefix (the first 12 characters), which is also what the API's logs show.
Revocation and expiry take effect on the next request: the API looks the key up on
every request and caches nothing about it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.settings import Target, get_settings

keys_app = typer.Typer(help="API keys bound to one tenant.", no_args_is_help=True)
console = Console(width=120)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="scores:read (default), reviews:write, admin; repeat"),
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="lifetime; never expires if unset")
    ] = None,
) -> None:
    """Create an API key for TENANT; it is printed once, only its hash is kept."""
    from core.tenancy import check_tenant_id
    from serving.keys import DEFAULT_SCOPES, KeyRequestError, create_key

    expires_in = timedelta(days=expires_in_days) if expires_in_days is not None else None
    try:
        key = create_key(
            get_settings(),
            check_tenant_id(tenant),
            scopes=scope or DEFAULT_SCOPES,
            expires_in=expires_in,
        )
    except KeyRequestError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    print(key)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant")] = None,
) -> None:
    """Every key by prefix (never the key): tenant, scopes, state, expiry and last use."""
    from serving.keys import list_keys

    table = Table("prefix", "tenant", "scopes", "state", "created", "expires", "last used")
    for info in list_keys(get_settings(), tenant):
        table.add_row(
            info.key_prefix,
            info.tenant_id,
            " ".join(info.scopes),
            info.state,
            _when(info.created_at),
            _when(info.expires_at),
            _when(info.last_used_at),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[
        str, typer.Argument(help="the key's prefix as `keys list` shows it, or the key")
    ],
) -> None:
    """Revoke a key at once: its next request is refused (401)."""
    from serving.keys import PREFIX_LENGTH, KeyRequestError, revoke_key, revoke_prefix

    settings = get_settings()
    if len(key) > PREFIX_LENGTH:
        if not revoke_key(settings, key):
            console.print("[red]no active key matches: nothing revoked[/red]")
            raise typer.Exit(1)
        console.print(f"revoked {key[:PREFIX_LENGTH]}")
        return
    try:
        info = revoke_prefix(settings, key)
    except KeyRequestError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"revoked {info.key_prefix} (tenant {info.tenant_id})")


@keys_app.command("api-role")
def keys_api_role(
    name: Annotated[str, typer.Option(help="the login role to create or reset")] = "bizos_api",
) -> None:
    """Create the API's own Postgres login role (or give it a new password) and print its
    URL once: set it as BIZOS_API_DATABASE_URL where the API runs."""
    from serving.api_role import ApiRoleError, create_api_role

    settings = get_settings()
    if settings.target is not Target.POSTGRES:
        console.print("[red]the API's login role exists on the Postgres target only[/red]")
        raise typer.Exit(2)
    try:
        url = create_api_role(settings, name)
    except ApiRoleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"role {name}: a member of bizos_reader only. Its URL (shown once):")
    print(f"BIZOS_API_DATABASE_URL={url}")
