"""The `bizos` command line: generate, run, serve, keys, demo."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from cli import backfill as backfill_cli
from cli import sandbox as sandbox_cli
from cli.credentials import credentials_app
from cli.dashboards import dashboards_app
from cli.db import db_app
from cli.keys import keys_app
from cli.scores import scores_app
from cli.tenants import tenants_app
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from pipelines.runner import TenantRun

app = typer.Typer(
    help="BizOSaaS Lakehouse: run the pipelines, serve the scores.",
    no_args_is_help=True,
    # Tracebacks with locals could show a tenant's secret held by a connector.
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(credentials_app, name="credentials")
app.add_typer(db_app, name="db")
app.add_typer(scores_app, name="scores")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(tenants_app, name="tenants")
# Our own handle on the terminal: run logs are redirected at the fd level while
# a job runs, and the progress shown here must not follow them into the file.
console = Console(
    file=os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1),
    width=None if sys.stdout.isatty() else 120,
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant id")]


# Sandbox data and server: the deterministic generator for every source (and the
# CRM exports), and the local HTTP server speaking each provider's shapes.
app.command("generate")(sandbox_cli.generate)
app.command("sandbox")(sandbox_cli.serve)
app.command("backfill")(backfill_cli.backfill)


@app.command("connect-sandbox")
def connect_sandbox(
    data: Annotated[
        str | None, typer.Option(help="generated data (default BIZOS_HOME/sandbox)")
    ] = None,
) -> None:
    """Store the sandbox keys of every generated tenant as its source credentials."""
    from pathlib import Path

    from sandbox.connect import connect_sandbox_tenants

    settings = get_settings()
    try:
        stored = connect_sandbox_tenants(settings, Path(data) if data else settings.sandbox_dir)
    except (FileNotFoundError, credentials_errors()) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    tenants = sorted({t for t, _ in stored})
    console.print(
        f"stored {len(stored)} credentials for {len(tenants)} tenants: {', '.join(tenants)}"
    )


def credentials_errors() -> type[Exception]:
    from credentials import CredentialError

    return CredentialError


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
        leads = run.metadata.get("crm_export/leads", {})
        served = run.metadata.get("serving_lead_scores", {})
        if run.success:
            console.print(
                f"[green]✓[/] {run.tenant_id}: {leads.get('rows_loaded', 0)} leads loaded, "
                f"{leads.get('rows_quarantined', 0)} quarantined, "
                f"{served.get('rows', 0)} scores published ({run.seconds:.1f}s)"
            )
            if leads.get("lines_read") is not None:
                console.print(
                    f"  export lines: {leads['lines_read']} read = {leads.get('lines_loaded')} "
                    f"loaded + {leads.get('lines_quarantined')} quarantined "
                    f"+ {leads.get('lines_blank')} blank"
                )
            for key in ("files_skipped", "files_quarantined"):
                for notice in cast(list[dict[str, str]], leads.get(key, [])):
                    console.print(f"  [yellow]![/] {notice['path']}: {notice['reason']}")
            if leads.get("rows_quarantined") or leads.get("files_quarantined"):
                console.print(f"  quarantined rows and reasons: {leads.get('quarantine_path')}")
            suppliers = run.metadata.get("suppliers/suppliers", {})
            if suppliers.get("rows") or suppliers.get("rows_quarantined"):
                matches = run.metadata.get("suppliers/screening_matches", {})
                risk = run.metadata.get("serving_supplier_risk", {})
                console.print(
                    f"  suppliers: {suppliers.get('rows', 0)} loaded, "
                    f"{suppliers.get('rows_quarantined', 0)} quarantined, "
                    f"{matches.get('matches', 0)} screening matches, "
                    f"{risk.get('rows', 0)} risk rows published"
                )
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


def _run_batches(
    settings: Settings, tenant: str | None, batch_size: int, *, ingest: bool = True
) -> list[TenantRun]:
    """Tenants ``batch_size`` at a time: ingest, model fit and publish per tenant, each
    dbt build once per batch (pipelines/batch.py); without ingest when ``ingest`` is
    False."""
    from exports.inbox import tenants_with_inbox
    from opsdb.tenants import disabled_tenants
    from pipelines.batch import run_tenants_in_batches
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance

    defs = build_definitions()
    instance = dagster_instance(settings)
    log_dir = settings.home / "logs"
    if tenant:
        chosen = [tenant]
    else:
        disabled = disabled_tenants(settings)
        chosen = [t for t in tenants_with_inbox(settings) if t not in disabled]
    if not chosen:
        raise LookupError(
            f"no tenant to run: no inbox folder of an active tenant under {settings.inbox_dir}"
        )
    console.print(f"run logs: {log_dir}/<tenant>.log, dbt's: {log_dir}/batch-<id>.dbt.log")
    status = console.status("starting")

    def stage(name: str) -> None:
        status.update(f"batch of up to {batch_size} tenants: [bold]{name}[/] …")

    def progress(name: str, ended: int, total: int) -> None:
        status.update(
            f"batch of up to {batch_size} tenants: [bold]{name}[/] {ended}/{total} tenants …"
        )

    def done(run: TenantRun) -> None:
        served = run.metadata.get("serving_lead_scores", {})
        if run.success:
            console.print(f"[green]✓[/] {run.tenant_id}: {served.get('rows', 0)} scores published")
        else:
            console.print(f"[red]✗[/] {run.tenant_id}: {run.error}\n  log {run.log_path}")

    with status:
        batches = run_tenants_in_batches(
            defs,
            settings,
            instance,
            tenant_ids=chosen,
            batch_size=batch_size,
            log_dir=log_dir,
            on_stage=stage,
            on_done=done,
            on_progress=progress,
            log=lambda line: console.print(f"[yellow]![/] {line}"),
            ingest=ingest,
        )
    return [run for batch in batches for run in batch.tenants]


@app.command()
def run(
    tenant: TenantOpt = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="build this many tenants per dbt invocation (0: one Dagster run per tenant, "
            "each starting dbt twice); many tenants refresh much faster in batches",
            min=0,
        ),
    ] = 0,
    ingest: Annotated[
        bool,
        typer.Option(
            help="--no-ingest: rebuild the warehouse, refit and republish from the lake as "
            "the last ingest left it, calling no provider (with --batch-size)",
        ),
    ] = True,
) -> None:
    """Materialize everything for every tenant with an inbox, or for one."""
    settings = get_settings()
    if not ingest and not batch_size:
        console.print("[red]error:[/] --no-ingest runs in batches: give --batch-size N")
        raise typer.Exit(2)
    try:
        runs = (
            _run_batches(settings, tenant, batch_size, ingest=ingest)
            if batch_size
            else _run(settings, tenant)
        )
    except (LookupError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not all(r.success for r in runs):
        raise typer.Exit(1)


@app.command()
def ingest(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")],
    source: Annotated[str, typer.Option("--source", "-s", help="stripe, ga4, crm, saleor, …")],
    table: Annotated[
        list[str] | None, typer.Option("--table", help="only this table (repeatable)")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="reload from this UTC day (YYYY-MM-DD) without moving the cursors",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="last UTC day (YYYY-MM-DD, included) of a --since reload"),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="reload one UTC day (YYYY-MM-DD): --since D --until D"),
    ] = None,
    keywords: Annotated[
        str | None,
        typer.Option("--keywords", help='sp_api: search phrases for this run too, "a, b"'),
    ] = None,
) -> None:
    """Load one source for one tenant: the same Dagster assets the jobs run.

    Every table loads from its cursor; the first load reads the source's whole
    history. ``--since`` (and ``--until``) reloads a span of days instead.
    """
    from dagster import AssetKey

    from assets.sources import SourceLoadConfig, is_connected, parse_day
    from connectors.sources import source_tables
    from core.tenancy import check_tenant_id

    settings = get_settings()
    try:
        tenant_id = check_tenant_id(tenant)
        tables = table or source_tables(source)
        unknown = sorted(set(tables) - set(source_tables(source)))
        if unknown:
            raise ValueError(f"unknown table(s) {', '.join(unknown)} for source {source}")
        if day is not None:
            if since is not None or until is not None:
                raise ValueError("--date is one day: give either --date or --since/--until")
            parse_day(day, "date")
            since = until = day
        if keywords is not None and source != "sp_api":
            raise ValueError("--keywords is for the sp_api source (catalog search phrases)")
        config = SourceLoadConfig(since=since, until=until, keywords=keywords)
        window = config.window()
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not is_connected(settings, tenant_id, source):
        console.print(
            f"[red]error:[/] tenant {tenant_id} has no {source} credential: "
            f"bizos credentials set --tenant {tenant_id} --source {source} < secret-file"
        )
        raise typer.Exit(2)
    # Only now the definitions (which parse the dbt project on a fresh home): a
    # mistyped option is answered at once.
    from pipelines.definitions import build_definitions
    from pipelines.runner import QUIET_RUN_CONFIG, dagster_instance, failure_summary

    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("tenants", [tenant_id])
    defs = build_definitions()
    what = (
        "from the cursor"
        if window is None
        else f"reload {window[0].date().isoformat()} to {window[1].isoformat(timespec='seconds')}"
    )
    run_config = {
        **QUIET_RUN_CONFIG,
        "ops": {f"{source}_ingest": {"config": config.model_dump(exclude_none=True)}},
    }
    with console.status(f"{tenant_id}: loading {source} ({', '.join(tables)}), {what} …"):
        result = defs.resolve_job_def("materialize_all").execute_in_process(
            partition_key=tenant_id,
            instance=instance,
            asset_selection=[AssetKey([source, t]) for t in tables],
            raise_on_error=False,
            run_config=run_config,
        )
    if not result.success:
        console.print(f"[red]✗[/] {failure_summary(result.all_events)}")
        raise typer.Exit(1)
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: v.value for k, v in mat.metadata.items()}
        after = meta.get("cursor_after")
        after = after if isinstance(after, dict) else {}
        console.print(
            f"[green]✓[/] {mat.asset_key.to_user_string()}: {meta.get('rows_in', 0)} in, "
            f"{meta.get('rows_added', 0)} new, {meta.get('rows_quarantined', 0)} quarantined, "
            + (
                what
                if window is not None
                # SP-API keeps no high-water mark: it reads the day's state
                else f"cursor {after.get('high_water', after.get('day', after.get('read_at')))}"
            )
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the scores API (FastAPI) on HOST:PORT, logging JSON lines."""
    from serving.main import serve as serve_api

    serve_api(get_settings(), host=host, port=port, workers=workers)


def print_top_leads(settings: Settings, tenant_id: str, n: int = 5) -> None:
    """The tenant's best leads as its API key reads them: score, probability, grade,
    MQL, fit and engagement, the model, and the top reasons."""
    from serving.queries import top_lead_scores

    table = Table(
        title=f"{tenant_id}: top {n} leads (as the API serves them)", title_justify="left"
    )
    for col in ("lead", "name", "score", "prob.", "grade", "MQL", "fit", "engag.", "reasons"):
        table.add_column(col, justify="left" if col in {"lead", "name", "reasons"} else "right")
    for row in top_lead_scores(settings, tenant_id, n):
        reasons = ", ".join(f"{r['label']} {r['points']:+d}" for r in row["reasons"][:4])
        probability = row["probability"]
        table.add_row(
            str(row["lead_id"]),
            f"{row['first_name'] or ''} {row['last_name'] or ''}".strip(),
            _text(row["score"]),
            "" if probability is None else f"{probability:.2f}",
            _text(row["grade"]),
            "yes" if row["mql"] else "no",
            _text(row["fit_score"]),
            _text(row["engagement_score"]),
            reasons,
        )
    console.print(table)


def print_supplier_risk(settings: Settings, tenant_id: str, n: int = 8) -> None:
    """The tenant's suppliers by tier, then its review queue, most urgent first."""
    from warehouse.marts import read_mart

    risk = read_mart(settings, "mart_supplier_risk", tenant_id=tenant_id).to_pylist()
    tiers = dict.fromkeys(("critical", "high", "medium", "low"), 0)
    for row in risk:
        tiers[row["grade"] or "unknown"] = tiers.get(row["grade"] or "unknown", 0) + 1
    counts = ", ".join(f"{count} {tier}" for tier, count in tiers.items())
    console.print(f"[bold]{tenant_id}[/]: {len(risk)} suppliers: {counts}")
    queue = read_mart(settings, "mart_supplier_review_queue", tenant_id=tenant_id).to_pylist()
    queue.sort(key=lambda r: (r["urgency"], -(r["score"] or 0), r["supplier_id"]))
    table = Table(title=f"{tenant_id}: supplier review queue ({len(queue)})", title_justify="left")
    for col in ("supplier", "name", "tier", "risk", "status", "due", "top reasons"):
        table.add_column(col, justify="right" if col == "risk" else "left")
    for row in queue[:n]:
        table.add_row(
            str(row["supplier_id"]),
            str(row["legal_name"]),
            _text(row["tier"]),
            _text(row["score"]),
            str(row["review_status"]),
            _text(row["review_due_date"]),
            ", ".join(str(row["reasons"] or "").split("|")[:3]),
        )
    console.print(table)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def print_lead_models(settings: Settings, tenant_ids: list[str]) -> None:
    """Each tenant's lead model against the rules on the held-out period (cli/scores.py)."""
    from cli.scores import print_evaluation

    print_evaluation(settings, None, calibration=False)


# Per demo tenant: about 45% of the leads end up labelled (converted, lost, or open
# for 90 days), so 400 leads give each tenant ~180 labels, well over min_labels (40).
DEMO_LEADS = 400
DEMO_CATALOG_ITEMS = 300
ACTIVITIES_PER_LEAD = 6


@app.command()
def demo(
    leads: Annotated[
        int,
        typer.Option(
            help="leads per demo tenant (enough labelled ones for a model of its own)", min=1
        ),
    ] = DEMO_LEADS,
    scale: Annotated[float, typer.Option(help="size of the sandbox data per tenant")] = 0.3,
) -> None:
    """Generate data for 3 tenants, serve it from the sandbox, run everything, show results."""
    from sandbox.connect import connect_sandbox_tenants, demo_master_key
    from sandbox.crm_export import DEMO_TENANTS, generate_demo_exports
    from sandbox.generator import generate_sources
    from sandbox.server import start_sandbox
    from sandbox.supplier_documents import generate_supplier_documents
    from sandbox.supplier_inbox import generate_supplier_inbox

    settings = get_settings()
    console.rule(f"BizOSaaS Lakehouse demo ({settings.target.value}, home {settings.home})")
    exports = generate_demo_exports(settings.inbox_dir, leads=leads)
    for export in exports:
        console.print(f"generated {export.leads} CRM export leads for {export.tenant_id}")
    for tenant_id in DEMO_TENANTS:
        suppliers = generate_supplier_inbox(settings.inbox_dir, tenant_id)
        documents = generate_supplier_documents(
            settings.inbox_dir, suppliers, today=datetime.now(UTC).date()
        )
        console.print(
            f"generated {len(suppliers.suppliers)} suppliers, {len(documents.files)} documents, "
            f"{suppliers.orders} purchase orders and a screening list for {tenant_id}"
        )
    with console.status("generating integration data for every source …"):
        # The CRM holds the export's leads, each with its activities (the engagement
        # signal); the other sources keep their size.
        generate_sources(
            settings.sandbox_dir,
            tenants=list(DEMO_TENANTS),
            scale=scale,
            counts={
                "crm_api.leads": leads,
                "crm_api.activities": leads * ACTIVITIES_PER_LEAD,
                "sp_api.catalog_items": DEMO_CATALOG_ITEMS,
            },
            # Supplier price lists quoting the catalog the sandbox serves over SP-API.
            with_price_lists=True,
            inbox_dir=settings.inbox_dir,
        )
    if settings.master_key is None:
        key_file = demo_master_key(settings)
        os.environ["BIZOS_MASTER_KEY"] = key_file.read_text().strip()
        console.print(f"demo master key for tenant credentials: {key_file} (set BIZOS_MASTER_KEY)")
    with start_sandbox(settings.sandbox_dir) as sandbox:
        # The connectors reach the providers through the sandbox, over real HTTP.
        os.environ.update(sandbox.env())
        settings = get_settings()
        stored = connect_sandbox_tenants(settings, settings.sandbox_dir)
        console.print(
            f"sandbox at {sandbox.url}: {len(stored)} tenant credentials stored (encrypted)"
        )
        # Every source table's first load reads its whole history.
        runs = _run(settings, None)
    if not all(r.success for r in runs):
        raise typer.Exit(1)
    for run in runs:
        print_loads(run)
    for export in exports:
        print_top_leads(settings, export.tenant_id)
    print_lead_models(settings, [e.tenant_id for e in exports])
    for tenant_id in DEMO_TENANTS:
        print_supplier_risk(settings, tenant_id)
    from cli.sourcing import print_top_opportunities

    for tenant_id in DEMO_TENANTS:
        print_top_opportunities(settings, tenant_id)
    console.rule("next")
    console.print(
        "API:        [bold]make serve[/] (bizos serve), then open http://127.0.0.1:8000/docs\n"
        "            a key: [bold].venv/bin/bizos keys create --tenant acme-robotics[/]\n"
        "Dagster UI: [bold]make dagster[/], then open http://127.0.0.1:3000"
    )


def print_loads(run: TenantRun) -> None:
    """What the integration assets of one tenant's run landed, table by table."""
    table = Table(
        title=f"{run.tenant_id}: integration loads (each table from its cursor)",
        title_justify="left",
    )
    for col in ("table", "rows in", "new", "quarantined", "pages"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for key, meta in sorted(run.metadata.items()):
        # source tables only: not dbt models, not the Postgres raw copies, not the
        # CRM export (printed above), not sources the tenant has not connected
        if "/" not in key or key.startswith(("raw/", "crm_export/")):
            continue
        if meta.get("connected") is False:
            continue
        table.add_row(
            key,
            str(meta.get("rows_in", 0)),
            str(meta.get("rows_added", 0)),
            str(meta.get("rows_quarantined", 0)),
            str(meta.get("pages", 0)),
        )
    console.print(table)


if __name__ == "__main__":
    app()
