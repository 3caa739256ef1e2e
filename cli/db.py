"""`bizos db`: the schema of the platform's own tables (Alembic trees ``ops`` and ``serving``).

``status`` reads only: where each tree's database stands against this code.
``upgrade`` brings every tree this target uses to its head. The stores upgrade on
first use anyway; this is for a deploy step that migrates before anything runs,
and it refuses a database a newer release has migrated (exit code 1).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from core.settings import Settings, Target, get_settings
from migrations import TREES, SchemaAhead, TreeStatus, status, upgrade

# Files of releases before the ops database; their rows are not read any more.
LEGACY_FILES = ("credentials.sqlite", "connectors.sqlite", "api_keys.sqlite")

db_app = typer.Typer(help="Schema migrations of the ops and serving tables.", no_args_is_help=True)
console = Console(width=120)


def _trees(settings: Settings) -> list[str]:
    return [name for name, tree in TREES.items() if settings.target in tree.targets]


def _describe(found: TreeStatus) -> str:
    return {
        "current": "up to date",
        "empty": "not created yet (created on first use, or by `bizos db upgrade`)",
        "behind": "behind: `bizos db upgrade` (or the next run) upgrades it",
        "ahead": "AHEAD of this code: migrated by a newer release; refused",
    }[found.state]


@db_app.command("status")
def status_command() -> None:
    """Current revision against this code's head, for each tree."""
    settings = get_settings()
    table = Table("tree", "database", "current", "head", "state")
    where = "Postgres" if settings.target is Target.POSTGRES else "state/ops.sqlite"
    ahead = False
    for name in TREES:
        if name not in _trees(settings):
            table.add_row(name, "-", "-", "-", "not used on the embedded target (Postgres only)")
            continue
        found = status(settings, name)
        ahead = ahead or found.state == "ahead"
        table.add_row(name, where, found.current or "-", found.head or "-", _describe(found))
    console.print(table)
    legacy = [f for f in LEGACY_FILES if (settings.state_dir / f).exists()]
    if legacy:
        console.print(
            f"note: {', '.join(legacy)} in {settings.state_dir} are from an older release and"
            " are not read; their rows were not carried over (see docs/operations.md)"
        )
    if ahead:
        raise typer.Exit(1)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Upgrade every tree this target uses to its head; refuse a database that is ahead."""
    settings = get_settings()
    for name in _trees(settings):
        try:
            before = status(settings, name).current
            after = upgrade(settings, name)
        except SchemaAhead as exc:
            console.print(f"[red]{name}: {exc}[/red]")
            raise typer.Exit(1) from None
        change = "already at head" if before == after else f"{before or 'empty'} -> {after}"
        console.print(f"{name}: {change} ({after or 'no revisions'})")
