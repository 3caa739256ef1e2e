"""Benchmark: from the sandbox to published scores, by tenants and by events.

One measurement = one fresh BIZOS_HOME: the sandbox generator writes ``--events``
integration records in all (Stripe, GA4, CRM, Saleor, forms, AI usage, SP-API;
split evenly over ``--tenants``, with each tenant's CRM export and price lists in
the inbox), the sandbox serves them over real HTTP from its own process, every
tenant's sandbox keys are stored, and the platform refreshes every tenant:

- ``--mode batch`` (pipelines/batch.py, ``bizos run --batch-size``): ingest per
  tenant, one dbt build per batch before the lead model and one after, model fit
  and publish per tenant. Each stage is timed, with its peak memory (RSS of this
  process and its children, i.e. dbt; the sandbox server is not counted) and its
  rows per second.
- ``--mode per-tenant``: one ``materialize_all`` run per tenant (``bizos run``),
  what the daily schedule does today: wall time and peak memory for the whole.

    .venv/bin/python bench/end_to_end.py --tenants 10 --events 1000000 [--record]
    .venv/bin/python bench/end_to_end.py --plot   # bench/end_to_end.png from the JSON

``--from-lake DIR`` skips generation and ingest and runs the batch's later stages
(`bizos run --no-ingest`'s path) over a lake made before, e.g. one that
bench/dbt_many_tenants.py copied to 1,000 tenants (ingesting 1,000 tenants takes
hours, most of it providers' rate limits).

Each measurement is appended as one JSON line to bench/end_to_end.jsonl;
``--record`` also appends its row to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

RESULTS_JSON = ROOT / "bench" / "end_to_end.jsonl"
PLOT = ROOT / "bench" / "end_to_end.png"
BIZOS = Path(sys.executable).with_name("bizos")
STAGES = ("ingest", "dbt_intermediate", "model_fit", "dbt_marts", "publish")


class PeakRss:
    """Samples the RSS of this process and its children (dbt) every ``every`` s and
    keeps the peak per stage; children listed in ``exclude`` (the sandbox) are not
    counted."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.stage = "setup"
        self.peaks: dict[str, int] = {}
        self.exclude: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process()

    def _sample(self) -> int:
        total = self._me.memory_info().rss
        for child in self._me.children(recursive=True):
            if child.pid in self.exclude:
                continue
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            rss = self._sample()
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CpuClock:
    """CPU seconds (user + sys) of this process and its children, the sandbox's
    excepted: the ones still running (psutil) and the ones waited for (``os.times``).

    Wall seconds on a shared machine say how busy it was; CPU seconds say what the
    work cost, so two runs side by side compare by it. A child's own children that
    ended before it are counted when it ends (the kernel adds them to it then)."""

    def __init__(self, peak: PeakRss) -> None:
        self._peak = peak
        self._me = psutil.Process()

    def now(self) -> float:
        times = os.times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self._me.children(recursive=True):
            if child.pid in self._peak.exclude:
                continue
            try:
                cpu = child.cpu_times()
            except psutil.Error:
                continue
            total += cpu.user + cpu.system
        return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sandbox_process(home: Path, peak: PeakRss) -> Iterator[dict[str, str]]:
    """`bizos sandbox` in its own process, so it does not share our GIL."""
    from sandbox.server import sandbox_env

    port = free_port()
    env = {**os.environ, "BIZOS_HOME": str(home)}
    proc = subprocess.Popen(
        [str(BIZOS), "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak.exclude.add(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.2)
        yield sandbox_env(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def events_per_tenant_at_scale_1() -> int:
    """Records one tenant has at scale 1.0 (derived tables included), measured."""
    from sandbox.generator import generate_sources

    with tempfile.TemporaryDirectory() as tmp:
        truth = generate_sources(Path(tmp), tenants=["calibrate"], scale=1.0)
    return sum(t.count for t in truth.tenants["calibrate"].tables.values())


def generate(home: Path, tenants: list[str], events: int) -> tuple[int, float, float]:
    """Write the data; returns (records written, scale used, seconds)."""
    from core.settings import get_settings
    from sandbox.generator import generate_sources

    settings = get_settings(home=home)
    per_tenant = events / len(tenants)
    scale = per_tenant / events_per_tenant_at_scale_1()
    started = time.monotonic()
    truth = generate_sources(
        settings.sandbox_dir,
        tenants=tenants,
        scale=scale,
        with_crm_exports=True,
        with_price_lists=True,
        inbox_dir=settings.inbox_dir,
    )
    written = sum(t.count for tt in truth.tenants.values() for t in tt.tables.values())
    return written, scale, time.monotonic() - started


def ingested_rows(metadata: dict[str, dict[str, object]]) -> int:
    """Records the connectors read from the sandbox in a tenant's run."""
    return sum(
        int(meta.get("rows_in", 0) or 0)  # type: ignore[call-overload]
        for key, meta in metadata.items()
        if "/" in key and not key.startswith(("raw/", "crm_export/", "lead_model/"))
    )


def published_rows(metadata: dict[str, dict[str, object]]) -> int:
    return sum(
        int(meta.get("rows", 0) or 0)  # type: ignore[call-overload]
        for key, meta in metadata.items()
        if key.startswith("serving_")
    )


def leads_scored(metadata: dict[str, dict[str, object]]) -> int:
    return int(metadata.get("lead_model/models", {}).get("leads_scored", 0) or 0)  # type: ignore[call-overload]


def lake_tenants_and_rows(lake: Path) -> tuple[list[str], int]:
    """The tenants with files in a lake, and its rows (quarantine aside)."""
    import pyarrow.parquet as pq

    files = [f for f in lake.rglob("*.parquet") if "_quarantine" not in f.parts]
    tenants = {p.split("=", 1)[1] for f in files for p in f.parts if p.startswith("tenant=")}
    return sorted(tenants), sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    home = args.home or Path(tempfile.mkdtemp(prefix="bizos-e2e-"))
    os.environ["BIZOS_HOME"] = str(home)
    os.environ.pop("BIZOS_DATABASE_URL", None)
    from cryptography.fernet import Fernet

    os.environ.setdefault("BIZOS_MASTER_KEY", Fernet.generate_key().decode())
    if args.from_lake:
        # Stages after ingest only, over a lake made before (bench/dbt_many_tenants.py
        # copies one to any number of tenants): `bizos run --no-ingest`'s path.
        os.environ["BIZOS_LAKE_URL"] = str(args.from_lake.resolve())
        tenants, written = lake_tenants_and_rows(args.from_lake)
        tenants = tenants[: args.tenants] if args.tenants else tenants
        print(f"lake {args.from_lake}: {len(tenants)} tenants, {written:,} rows", flush=True)
    else:
        tenants = [f"e2e-{i:04d}" for i in range(args.tenants)]
        written, scale, gen_seconds = generate(home, tenants, args.events)
        print(
            f"generated {written:,} records for {len(tenants)} tenants (scale {scale:.3f}) "
            f"in {gen_seconds:.0f}s; home {home}",
            flush=True,
        )

    from core.settings import get_settings
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance, run_tenants
    from sandbox.connect import connect_sandbox_tenants

    row: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "mode": f"{args.mode}, no ingest" if args.from_lake else args.mode,
        "tenants": len(tenants),
        "events": written,
        "batch_size": args.batch_size if args.mode == "batch" else 1,
        "cores": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 1),
    }
    sandbox = nullcontext({}) if args.from_lake else None
    with PeakRss() as peak, sandbox or sandbox_process(home, peak) as env:
        os.environ.update(env)
        settings = get_settings()
        if not args.from_lake:
            connect_sandbox_tenants(settings, settings.sandbox_dir)
        defs = build_definitions()
        instance = dagster_instance(settings)
        log_dir = home / "logs"
        clock = CpuClock(peak)
        cpu: dict[str, float] = {}
        started, cpu_started = time.monotonic(), clock.now()
        if args.mode == "batch":
            from pipelines.batch import run_tenants_in_batches

            last_stage, last_cpu = [peak.stage], [cpu_started]

            def on_stage(name: str) -> None:
                now = clock.now()
                cpu[last_stage[0]] = cpu.get(last_stage[0], 0.0) + now - last_cpu[0]
                last_stage[0], last_cpu[0] = name, now
                peak.stage = name
                print(f"  {datetime.now(UTC):%H:%M:%S} {name}", flush=True)

            def on_progress(name: str, ended: int, total: int) -> None:
                if ended == total or ended % max(total // 10, 1) == 0:
                    print(f"  {datetime.now(UTC):%H:%M:%S} {name} {ended}/{total}", flush=True)

            batches = run_tenants_in_batches(
                defs,
                settings,
                instance,
                tenant_ids=tenants,
                batch_size=args.batch_size,
                log_dir=log_dir,
                on_stage=on_stage,
                on_progress=on_progress,
                ingest=not args.from_lake,
            )
            runs = [r for b in batches for r in b.tenants]
            seconds = {s: sum(b.stage_seconds.get(s, 0.0) for b in batches) for s in STAGES}
            row["dbt_builds"] = sum(b.dbt_builds for b in batches)
        else:
            peak.stage = "all"
            runs = run_tenants(defs, settings, instance, tenant_ids=tenants, log_dir=log_dir)
            seconds = {}
            row["dbt_builds"] = 2 * len(tenants)
        wall, cpu_total = time.monotonic() - started, clock.now() - cpu_started
        if args.mode == "batch":
            ended = cpu_started + cpu_total
            cpu[last_stage[0]] = cpu.get(last_stage[0], 0.0) + ended - last_cpu[0]
    meta_rows = {
        "ingest": written if args.from_lake else sum(ingested_rows(r.metadata) for r in runs),
        "model_fit": sum(leads_scored(r.metadata) for r in runs),
        "publish": sum(published_rows(r.metadata) for r in runs),
    }
    row.update(
        succeeded=sum(r.success for r in runs),
        wall_s=round(wall, 1),
        cpu_s=round(cpu_total, 1),
        peak_rss_mb=round(max(peak.peaks.values(), default=0) / 2**20),
        rows_ingested=meta_rows["ingest"],
        leads_scored=meta_rows["model_fit"],
        rows_published=meta_rows["publish"],
        load_after=round(os.getloadavg()[0], 1),
    )
    for stage in STAGES if args.mode == "batch" else ():
        if args.from_lake and stage == "ingest":
            continue
        s = seconds.get(stage, 0.0)
        # dbt's stages are rated by the events they carry through to the marts
        rows = meta_rows.get(stage, meta_rows["ingest"])
        row[f"{stage}_s"] = round(s, 1)
        row[f"{stage}_cpu_s"] = round(cpu.get(stage, 0.0), 1)
        row[f"{stage}_rss_mb"] = round(peak.peaks.get(stage, 0) / 2**20)
        row[f"{stage}_rows_per_s"] = round(rows / s) if s else None
    failed = [f"{r.tenant_id}: {r.error}" for r in runs if not r.success]
    if failed:
        row["failed"] = failed[:5]
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table RESULTS.md shows: one line per measurement, stages as s / MB / rows/s."""
    head = ["mode", "tenants", "events", "succeeded", "dbt builds", "wall (s)", "CPU (s)"]
    head += ["peak RSS (MB)"] + [f"{s} s / CPU s / MB / rows/s" for s in STAGES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    for r in rows:
        cells = [
            r["mode"],
            f"{r['tenants']:,}",
            f"{r['events']:,}",
            f"{r['succeeded']}",
            f"{r['dbt_builds']}",
            f"{r['wall_s']:,.0f}",
            f"{r['cpu_s']:,.0f}" if "cpu_s" in r else "-",
            f"{r['peak_rss_mb']:,}",
        ]
        for s in STAGES:
            if f"{s}_s" in r:
                rate = r[f"{s}_rows_per_s"]
                stage_cpu = r.get(f"{s}_cpu_s")
                cells.append(
                    f"{r[f'{s}_s']:,.0f} / "
                    + (f"{stage_cpu:,.0f}" if stage_cpu is not None else "-")
                    + f" / {r[f'{s}_rss_mb']:,} / "
                    + (f"{rate:,}" if rate is not None else "-")
                )
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: Path) -> bool:
    """Stage seconds against tenants and against events (log-log); False when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    batch = [r for r in rows if r["mode"] == "batch" and r["succeeded"] == r["tenants"]]
    per_tenant = [r for r in rows if r["mode"] == "per-tenant"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, xkey, fixed_key, label in (
        (axes[0], "tenants", "events", "tenants"),
        (axes[1], "events", "tenants", "events (integration records)"),
    ):
        # rows of the same size on the other axis when there are several, else all
        # of them, each point labelled with its size on the other axis
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in batch:
            groups.setdefault(_bucket(r[fixed_key]), []).append(r)
        best = max(groups.values(), key=lambda g: len({r[xkey] for r in g}), default=[])
        if len(best) < 2:
            best = list(batch)
        # one point per size: the latest run of it (earlier ones are the code before)
        latest = {r[xkey]: r for r in sorted(best, key=lambda r: r["when"])}
        best = sorted(latest.values(), key=lambda r: r[xkey])
        xs = [r[xkey] for r in best]
        for stage in STAGES:
            ax.plot(xs, [r[f"{stage}_s"] for r in best], marker="o", label=f"batch: {stage}")
        ax.plot(xs, [r["wall_s"] for r in best], marker="s", color="black", label="batch: wall")
        for r in best:
            other = f"{r[fixed_key]:,} {fixed_key}"
            ax.annotate(
                other, (r[xkey], r["wall_s"]), fontsize=7, xytext=(4, 4), textcoords="offset points"
            )
        fixed = {_bucket(b[fixed_key]) for b in best}
        pts = sorted(
            (r for r in per_tenant if _bucket(r[fixed_key]) in fixed),
            key=lambda r: r[xkey],
        )
        if pts:
            ax.plot(
                [r[xkey] for r in pts],
                [r["wall_s"] for r in pts],
                marker="x",
                linestyle="--",
                color="red",
                label="per-tenant runs: wall",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("bench/end_to_end.py: seconds per stage, latest run of each size (2-core VM)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return True


def _bucket(value: int) -> int:
    """Round to 1 significant figure, so 1,003,210 events and 998,000 group together."""
    from math import floor, log10

    if value <= 0:
        return 0
    magnitude = 10 ** floor(log10(value))
    return round(value / magnitude) * magnitude


def load_rows() -> list[dict[str, Any]]:
    if not RESULTS_JSON.exists():
        return []
    return [json.loads(line) for line in RESULTS_JSON.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--events", type=int, default=1_000_000, help="records in all")
    parser.add_argument("--mode", choices=["batch", "per-tenant"], default="batch")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="tenants per dbt build (0: all in one)"
    )
    parser.add_argument("--home", type=Path, help="BIZOS_HOME (default: a temporary folder)")
    parser.add_argument(
        "--from-lake",
        type=Path,
        help="no data generated or ingested: the stages after ingest over this lake's "
        "tenants (the first --tenants of them; 0: all), with --mode batch",
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--plot", action="store_true", help="only draw the plot from the JSON")
    args = parser.parse_args()
    if args.plot:
        rows = load_rows()
        print(markdown(rows))
        print(f"plot: {PLOT}" if plot(rows, PLOT) else "matplotlib not installed: no plot")
        return
    if args.from_lake and args.mode != "batch":
        parser.error("--from-lake runs the batch path (--mode batch)")
    row = measure(args)
    print(json.dumps(row, indent=1))
    with open(RESULTS_JSON, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(
                f"\n#### {row['when']} UTC, end to end, {args.mode}, {args.tenants} tenants, "
                f"{row['events']:,} events, {os.cpu_count()} cores, Python "
                f"{platform.python_version()}, load average {row['load_before']} -> "
                f"{row['load_after']}\n\nCommand: `.venv/bin/python bench/end_to_end.py "
                f"--tenants {args.tenants} "
                + (
                    f"--from-lake {args.from_lake} "
                    if args.from_lake
                    else f"--events {args.events} "
                )
                + f"--mode {args.mode} --batch-size {args.batch_size} --record`\n\n"
                f"{markdown([row])}\n"
            )
    if row["succeeded"] != row["tenants"]:
        raise SystemExit(f"failed: {row.get('failed')}")


if __name__ == "__main__":
    main()
