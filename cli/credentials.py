"""`bizos credentials`: set, list, delete, audit, rotate-master, new-master-key.

Secrets come in on standard input (or a hidden prompt at a terminal), never as an
argument, so they stay out of shell history and process listings, and nothing here
prints one back.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from core.settings import get_settings
from credentials.crypto import CredentialError, MasterKeyError, generate_master_key
from credentials.vault import (
    InvalidCredentialName,
    delete_secret,
    list_credentials,
    master_key_ring,
    parse_new_master_key,
    read_audit,
    rotate_master_key,
    set_secret,
)

NEW_MASTER_KEY_ENV = "BIZOS_NEW_MASTER_KEY"

credentials_app = typer.Typer(
    help="Tenants' own credentials for their sources, encrypted under BIZOS_MASTER_KEY.",
    no_args_is_help=True,
    # Typer's pretty tracebacks show local variables by default; a secret may be one.
    pretty_exceptions_show_locals=False,
)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="tenant id")]
SourceOpt = Annotated[str, typer.Option("--source", "-s", help="source, e.g. stripe")]
TenantFilterOpt = Annotated[
    str | None, typer.Option("--tenant", "-t", help="only this tenant (default: all)")
]


def _console(*, stderr: bool = False) -> Console:
    # Made per call: the CLI's stdout may be swapped (tests, redirection) after import.
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr, highlight=False, width=None if stream.isatty() else 160, soft_wrap=False
    )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Our errors as one line on stderr and an exit code, not a traceback."""
    try:
        yield
    except (InvalidCredentialName, MasterKeyError) as exc:
        _console(stderr=True).print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    except CredentialError as exc:
        _console(stderr=True).print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


def _read_secret(label: str) -> SecretStr:
    """One value from stdin (one trailing newline dropped), or a hidden prompt at a tty."""
    if sys.stdin.isatty():
        value = typer.prompt(label, hide_input=True, prompt_suffix=": ")
    else:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    return SecretStr(value)


def _check_form(source: str, secret: SecretStr) -> None:
    """Refuse a credential its source could never read (SP-API's JSON missing a field)."""
    from connectors.sources import SOURCES

    definition = SOURCES.get(source)
    if definition is None or definition.check_secret is None:
        return
    try:
        definition.check_secret(secret.get_secret_value())
    except ValueError as exc:
        raise InvalidCredentialName(f"refusing to store it: {exc}; nothing was stored") from None


@credentials_app.command("set")
def set_command(tenant: TenantOpt, source: SourceOpt) -> None:
    """Store TENANT's credential for SOURCE, read from standard input."""
    with _clear_errors():
        secret = _read_secret(f"{source} secret for {tenant}")
        if not secret.get_secret_value():
            raise InvalidCredentialName("no secret on standard input: refusing to store nothing")
        _check_form(source, secret)
        set_secret(get_settings(), tenant_id=tenant, source=source, secret=secret, actor=_actor())
    _console().print(f"stored the {source} credential of {tenant} (encrypted; not shown)")


@credentials_app.command("list")
def list_command(tenant: TenantFilterOpt = None) -> None:
    """Show which credentials are stored (tenant, source, updated, key id); never values."""
    settings = get_settings()
    with _clear_errors():
        rows = list_credentials(settings, tenant)
    console = _console()
    if not rows:
        console.print("no credentials stored" + (f" for {tenant}" if tenant else ""))
    else:
        table = Table("tenant", "source", "updated_at", "key id")
        for row in rows:
            table.add_row(
                row.tenant_id,
                row.source,
                row.updated_at.isoformat(timespec="seconds"),
                row.key_id,
            )
        console.print(table)
    try:
        held = master_key_ring(settings).key_ids
    except MasterKeyError as exc:
        console.print(f"[yellow]{exc}[/]", soft_wrap=True)
        return
    console.print(f"BIZOS_MASTER_KEY holds key id {', '.join(held)}")
    missing = sorted({row.key_id for row in rows} - set(held))
    if missing:
        console.print(
            f"[yellow]stored under key id {', '.join(missing)}, which BIZOS_MASTER_KEY does not"
            " hold: those credentials cannot be read with it[/]",
            soft_wrap=True,
        )


@credentials_app.command("delete")
def delete_command(tenant: TenantOpt, source: SourceOpt) -> None:
    """Remove TENANT's credential for SOURCE."""
    with _clear_errors():
        deleted = delete_secret(get_settings(), tenant_id=tenant, source=source, actor=_actor())
    if not deleted:
        _console(stderr=True).print(f"no {source} credential stored for {tenant}")
        raise typer.Exit(1)
    _console().print(f"deleted the {source} credential of {tenant}")


@credentials_app.command("audit")
def audit_command(
    tenant: TenantFilterOpt = None,
    limit: Annotated[int, typer.Option(help="newest N rows", min=1)] = 100,
) -> None:
    """Who read, set, deleted or re-wrapped which credential, newest first."""
    with _clear_errors():
        entries = read_audit(get_settings(), tenant, limit=limit)
    console = _console()
    if not entries:
        console.print("no audit rows" + (f" for {tenant}" if tenant else ""))
        return
    table = Table("at", "actor", "tenant", "source", "action", "outcome")
    for entry in entries:
        table.add_row(
            entry.at.isoformat(timespec="seconds"),
            entry.actor,
            entry.tenant_id,
            entry.source or "",
            entry.action.value,
            entry.outcome.value,
        )
    console.print(table)


@credentials_app.command("rotate-master")
def rotate_master_command() -> None:
    """Re-wrap every tenant's data key under a new master key, in one transaction.

    The new key comes from BIZOS_NEW_MASTER_KEY, else standard input; BIZOS_MASTER_KEY
    must hold the current one (alone or as "new,old").
    """
    with _clear_errors():
        settings = get_settings()
        if settings.new_master_key is not None:
            new_key = parse_new_master_key(settings.new_master_key, name=NEW_MASTER_KEY_ENV)
        else:
            new_key = parse_new_master_key(
                _read_secret("new master key"), name="the new master key (standard input)"
            )
        count = rotate_master_key(settings, new_key, actor=_actor())
    _console().print(
        f"re-wrapped {count} tenant data key{'' if count == 1 else 's'} under master key id"
        f" {new_key.key_id}.\nNext: set BIZOS_MASTER_KEY to the new key everywhere (the list"
        " 'new,old' reads both while the change rolls out), then drop the old one.",
        soft_wrap=True,
    )


@credentials_app.command("new-master-key")
def new_master_key_command() -> None:
    """Print a fresh random master key (urlsafe base64) for BIZOS_MASTER_KEY."""
    key = generate_master_key()
    typer.echo(key.encoded())
    _console(stderr=True).print(f"key id {key.key_id}")
