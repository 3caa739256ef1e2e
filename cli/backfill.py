"""`bizos backfill`: reload a span of days for a set of tenants (pipelines/backfill.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from core.settings import get_settings


def backfill(
    tenant: Annotated[
        list[str], typer.Option("--tenant", "-t", help="a tenant to backfill (repeat)")
    ],
    since: Annotated[str, typer.Option("--since", help="first UTC day, YYYY-MM-DD")],
    until: Annotated[
        str | None, typer.Option("--until", help="last UTC day, YYYY-MM-DD (default today)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", "-s", help="only this source (its <source>_load job)"),
    ] = None,
) -> None:
    """Reload SINCE..UNTIL for each TENANT: one run per tenant, the window as run config
    and tag bizos/window; without --source the whole chain runs, dbt's incremental
    marts rebuilding only the window's days."""
    from cli.main import console
    from pipelines.backfill import backfill as run_backfill
    from pipelines.backfill import check_window
    from pipelines.runner import TenantRun

    settings = get_settings()
    try:
        window = check_window(since, until)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    # Only now the definitions (which parse the dbt project on a fresh home).
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance

    def done(run: TenantRun) -> None:
        if run.success:
            console.print(f"[green]✓[/] {run.tenant_id}: {window.tag} ({run.seconds:.1f}s)")
        else:
            console.print(f"[red]✗[/] {run.tenant_id}: {run.error}\n  run {run.run_id}")

    instance = dagster_instance(settings)
    try:
        runs = run_backfill(
            build_definitions(),
            settings,
            instance,
            tenant_ids=tenant,
            since=since,
            until=until,
            source=source,
            on_done=done,
            log_dir=settings.home / "logs",
        )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not all(r.success for r in runs):
        raise typer.Exit(1)
