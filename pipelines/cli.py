"""The `bizos` command line: generate, run, serve, keys, demo."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from credentials.cli import credentials_app
from pipelines.settings import Settings, get_settings

if TYPE_CHECKING:
    from pipelines.runner import TenantRun

app = typer.Typer(
    help="BizOSaaS Lakehouse: run the pipelines, serve the scores.",
    no_args_is_help=True,
    # Tracebacks with locals could show a tenant's secret held by a connector.
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="API keys bound to one tenant.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(credentials_app, name="credentials")
# Our own handle on the terminal: run logs are redirected at the fd level while
# a job runs, and the progress shown here must not follow them into the file.
console = Console(
    file=os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1),
    width=None if sys.stdout.isatty() else 120,
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant id")]


@app.command()
def generate(
    tenants: Annotated[int, typer.Option(help="how many demo tenants (1-3)", min=1, max=3)] = 3,
    leads: Annotated[int, typer.Option(help="leads per tenant", min=1)] = 60,
    seed: Annotated[int, typer.Option(help="same seed, same files")] = 7,
) -> None:
    """Write deterministic CRM lead exports into each demo tenant's inbox."""
    from sandbox.crm_export import DEMO_TENANTS, generate_demo_exports

    settings = get_settings()
    for export in generate_demo_exports(
        settings.inbox_dir, tenants=DEMO_TENANTS[:tenants], leads=leads, seed=seed
    ):
        console.print(f"wrote {export.leads} leads to {export.path}")


def _run(settings: Settings, tenant: str | None) -> list[TenantRun]:
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance, run_tenants

    defs = build_definitions()
    instance = dagster_instance(settings)
    log_dir = settings.home / "logs"
    console.print(f"run logs (Dagster and dbt): {log_dir}/<tenant>.log")
    status = console.status("starting")

    def started(tenant_id: str) -> None:
        status.update(f"[bold]{tenant_id}[/]: ingest → quality → dbt build → publish …")

    def done(run: TenantRun) -> None:
        leads = run.metadata.get("crm_leads", {})
        served = run.metadata.get("serving_lead_scores", {})
        if run.success:
            console.print(
                f"[green]✓[/] {run.tenant_id}: {leads.get('rows_loaded', 0)} leads loaded, "
                f"{leads.get('rows_quarantined', 0)} quarantined, "
                f"{served.get('rows', 0)} scores published ({run.seconds:.1f}s)"
            )
            if leads.get("rows_quarantined"):
                console.print(f"  quarantined rows and reasons: {leads.get('quarantine_path')}")
        else:
            console.print(
                f"[red]✗[/] {run.tenant_id}: {run.error}\n  run {run.run_id}, log {run.log_path}"
            )

    with status:
        runs = run_tenants(
            defs,
            settings,
            instance,
            tenant_ids=[tenant] if tenant else None,
            on_start=started,
            on_done=done,
            log_dir=log_dir,
        )
    return runs


@app.command()
def run(tenant: TenantOpt = None) -> None:
    """Materialize everything for every tenant with an inbox, or for one."""
    settings = get_settings()
    try:
        runs = _run(settings, tenant)
    except (LookupError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not all(r.success for r in runs):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the scores API (FastAPI) on HOST:PORT."""
    import uvicorn

    from serving.main import create_app

    uvicorn.run(create_app(get_settings()), host=host, port=port)


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")]) -> None:
    """Create an API key for TENANT; it is printed once, only its hash is kept."""
    from pipelines.partitions import check_tenant_id
    from serving.keys import create_key

    key = create_key(get_settings(), check_tenant_id(tenant))
    console.print(key, soft_wrap=True, highlight=False)


def print_top_leads(settings: Settings, tenant_id: str, n: int = 5) -> None:
    from serving.queries import top_lead_scores

    table = Table(title=f"{tenant_id}: top {n} leads", title_justify="left")
    for col in ("lead", "name", "company", "title", "score", "grade", "reasons"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for row in top_lead_scores(settings, tenant_id, n):
        reasons = ", ".join(f"{r['factor']} {r['points']:+d}" for r in row["reasons"])
        table.add_row(
            str(row["lead_id"]),
            f"{row['first_name']} {row['last_name']}",
            str(row["company"]),
            str(row["title"] or ""),
            str(row["score"]),
            str(row["grade"]),
            reasons,
        )
    console.print(table)


@app.command()
def demo(
    leads: Annotated[int, typer.Option(help="leads per demo tenant", min=1)] = 60,
) -> None:
    """Generate demo exports for 3 tenants, run everything, show the top leads."""
    from sandbox.crm_export import generate_demo_exports

    settings = get_settings()
    console.rule(f"BizOSaaS Lakehouse demo ({settings.target.value}, home {settings.home})")
    exports = generate_demo_exports(settings.inbox_dir, leads=leads)
    for export in exports:
        console.print(f"generated {export.leads} CRM leads for {export.tenant_id}")
    runs = _run(settings, None)
    if not all(r.success for r in runs):
        raise typer.Exit(1)
    for export in exports:
        print_top_leads(settings, export.tenant_id)
    console.rule("next")
    console.print(
        "API:        [bold]make serve[/] (bizos serve), then open http://127.0.0.1:8000/docs\n"
        "            a key: [bold].venv/bin/bizos keys create --tenant acme-robotics[/]\n"
        "Dagster UI: [bold]make dagster[/], then open http://127.0.0.1:3000"
    )


if __name__ == "__main__":
    app()
