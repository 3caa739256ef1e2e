"""Commands for the sandbox: ``generate`` the data, ``serve`` it.

Mount ``sandbox_app`` (``app.add_typer(sandbox_app, name="sandbox")``) or
register the functions as top-level commands (``app.command("generate")(generate)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import get_settings
from sandbox.crm_export import DEMO_TENANTS

sandbox_app = typer.Typer(
    help="Generate source data and serve it as the providers' APIs.", no_args_is_help=True
)
console = Console()

MORE_TENANTS = (
    "dunmore-foods",
    "elm-logistics",
    "fjord-media",
    "granite-labs",
    "harbor-dental",
    "iris-travel",
    "juniper-legal",
    "kestrel-energy",
    "lumen-education",
)


def tenant_names(n: int) -> list[str]:
    """The first ``n`` tenants: the demo's three, then more, then numbered ones."""
    named = [*DEMO_TENANTS, *MORE_TENANTS]
    return named[:n] + [f"tenant-{i:03d}" for i in range(len(named) + 1, n + 1)]


def _parse_counts(items: list[str]) -> dict[str, int]:
    counts = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected source.table=N")
        try:
            counts[name.strip()] = int(value.replace("_", ""))
        except ValueError:
            raise typer.BadParameter(f"{item!r}: N must be an integer") from None
    return counts


def generate(
    tenants: Annotated[int, typer.Option(help="how many tenants", min=1)] = 3,
    scale: Annotated[float, typer.Option(help="multiplies every table's row count")] = 1.0,
    seed: Annotated[int, typer.Option(help="same seed, same files")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="output directory [default: BIZOS_HOME/sandbox]")
    ] = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", "-t", help="tenant id (repeat; overrides --tenants)"),
    ] = None,
    count: Annotated[
        list[str] | None,
        typer.Option("--count", help="one table's row count, e.g. stripe.charges=1000000 (repeat)"),
    ] = None,
    defects: Annotated[bool, typer.Option(help="break a documented few records per table")] = False,
    crm_exports: Annotated[
        bool, typer.Option(help="also write each tenant's CRM CSV export into BIZOS_HOME/inbox")
    ] = True,
    price_lists: Annotated[
        bool,
        typer.Option(help="also write each tenant's supplier price lists into BIZOS_HOME/inbox"),
    ] = True,
) -> None:
    """Write deterministic data for every source, its ground truth and the sandbox keys."""
    from sandbox.generator import generate_sources

    settings = get_settings()
    out_dir = out or settings.home / "sandbox"
    names = list(tenant) if tenant else tenant_names(tenants)
    try:
        counts = _parse_counts(count or [])
    except typer.BadParameter as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_rows(tenant_id: str, table: str, rows: int) -> None:
            if tenant_id not in tasks:
                tasks[tenant_id] = progress.add_task(tenant_id)
            progress.update(tasks[tenant_id], description=f"{tenant_id}: {table} {rows:,} rows")

        try:
            truth = generate_sources(
                out_dir,
                tenants=names,
                scale=scale,
                seed=seed,
                counts=counts,
                with_defects=defects,
                with_crm_exports=crm_exports,
                with_price_lists=price_lists,
                inbox_dir=settings.inbox_dir,
                progress=on_rows,
            )
        except ValueError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None

    table = Table(title=f"generated into {out_dir}", title_justify="left")
    table.add_column("table")
    for name in names:
        table.add_column(name, justify="right")
    first = truth.tenants[names[0]].tables
    for tname in sorted(first):
        table.add_row(tname, *(f"{truth.table(n, tname).count:,}" for n in names))
    console.print(table)
    console.print(f"ground truth: {out_dir / 'ground_truth.json'}")
    console.print(f"sandbox keys: {out_dir / 'credentials.json'}")
    if crm_exports:
        console.print(f"CRM exports:  {settings.inbox_dir}/<tenant>/crm/leads_export.csv")
    if price_lists:
        console.print(f"price lists:  {settings.inbox_dir}/<tenant>/price_lists/")


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: any free port)")] = 8100,
    data: Annotated[
        Path | None, typer.Option(help="generated data [default: BIZOS_HOME/sandbox]")
    ] = None,
    print_env: Annotated[
        bool,
        typer.Option(
            "--print-env",
            help="print the BIZOS_<SOURCE>_BASE_URL and BIZOS_LWA_TOKEN_URL lines and exit",
        ),
    ] = False,
) -> None:
    """Serve the generated data as Stripe, GA4, the CRM, Saleor, the forms and usage APIs."""
    from sandbox.server import sandbox_env, serve_forever

    if print_env:
        for name, value in sandbox_env(f"http://{host}:{port}").items():
            print(f"export {name}={value}")
        return

    data_dir = data or get_settings().home / "sandbox"
    if not (data_dir / "credentials.json").is_file():
        console.print(f"[red]error:[/] no generated data in {data_dir}: run generate first")
        raise typer.Exit(2)

    def ready(url: str) -> None:
        for name, value in sandbox_env(url).items():
            # Plain print: these lines are meant to be pasted into a shell or .env.
            print(f"{name}={value}", flush=True)
        console.print(
            f"keys per tenant and source: {data_dir / 'credentials.json'}; "
            f"faults: POST {url}/_sandbox/faults",
            highlight=False,
        )

    serve_forever(data_dir, host, port, on_ready=ready)


sandbox_app.command("generate")(generate)
sandbox_app.command("serve")(serve)
