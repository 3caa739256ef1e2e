"""Benchmark: memory and CPU of one tenant's source checks (the GX suites of every
landed table), this code against an earlier commit, on the same lake.

The 10 M-event run (bench/RESULTS.md) saw ingest workers grow to about 2 GB at 1 M
records a tenant. The source checks were one cause: GX's execution engine kept the
last frame of each suite alive, so a process held every table it had checked, and
each table was one frame however large. Now frames are let go after each validation
and a table is checked in chunks of ``BIZOS_QUALITY_CHECK_CHUNK_ROWS``.

Each contender runs in a process of its own: it imports everything, checks one small
table (GX's own start-up, which both pay), then checks every table of the tenant,
and reports the growth of its peak RSS (``VmHWM``) over that second step, its RSS
after it, and its CPU seconds. ``before`` is the given commit, taken with ``git
archive`` and run with ``PYTHONPATH`` set to it; ``ours`` is this tree, once per
chunk size asked for.

The lake comes from ``--home``: a BIZOS_HOME whose lake holds the tenant's tables,
e.g. what ``bench/end_to_end.py --tenants 1 --events 1000000 --home H`` landed.

Usage: .venv/bin/python bench/source_checks_memory.py --home H --tenant e2e-0000
       [--before 94e4b86] [--chunks 1000000,100000,50000] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_line, record_section  # noqa: E402

CHILD = """
import json, sys, time
from dagster import AssetCheckKey
from assets.quality_checks import SOURCE_TABLES, source_table_records
from core.settings import get_settings
from quality.gates import EXPECTATIONS, ROW_COUNT

def status(key):
    text = open("/proc/self/status").read()
    return int(text.split(key + ":")[1].split()[0]) / 1024

home, tenant, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = get_settings(home=home, database_url=None)
if chunk and "quality_check_chunk_rows" in type(settings).model_fields:
    settings = settings.model_copy(update={"quality_check_chunk_rows": chunk})
first = next(iter(SOURCE_TABLES))
source_table_records(settings, tenant, run_id="warm", selected={AssetCheckKey(first, EXPECTATIONS)})
base = status("VmHWM")
started = time.process_time()
selected = {AssetCheckKey(k, c) for k in SOURCE_TABLES for c in (EXPECTATIONS, ROW_COUNT)}
records = source_table_records(settings, tenant, run_id="bench", selected=selected)
print(json.dumps({
    "cpu_s": time.process_time() - started,
    "peak_growth_mb": status("VmHWM") - base,
    "peak_mb": status("VmHWM"),
    "rss_after_mb": status("VmRSS"),
    "rows": sum(int(r.details.get("rows_checked", 0)) for r in records),
    "tables": sum(1 for r in records if r.details.get("rows_checked")),
    "failed": sorted(r.asset_key for r in records if not r.passed),
}))
"""


def export_commit(commit: str, into: Path) -> Path:
    """The tree of ``commit`` under ``into``, as ``git archive`` gives it."""
    archive = into / "src.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    return into / "src"


def measure(root: Path, home: Path, tenant: str, chunk: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env = {k: v for k, v in env.items() if not k.startswith(("BIZOS_", "DAGSTER_"))}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), tenant, str(chunk)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(rows: list[tuple[str, int, dict[str, Any]]]) -> str:
    base = rows[0][2]
    lines = [
        "| code | chunk rows | tables | rows checked | CPU (s) | peak growth (MB) "
        "| RSS after (MB) | failed | first / this (peak growth) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, chunk, r in rows:
        ratio = base["peak_growth_mb"] / r["peak_growth_mb"] if r["peak_growth_mb"] else 0.0
        size = f"{chunk:,}" if chunk else "whole table"
        lines.append(
            f"| {name} | {size} | {r['tables']} | {r['rows']:,} | {r['cpu_s']:.1f} "
            f"| {r['peak_growth_mb']:,.0f} | {r['rss_after_mb']:,.0f} "
            f"| {', '.join(r['failed']) or 'none'} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="BIZOS_HOME with a landed lake")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--before", default="94e4b86", help="the commit to compare with")
    parser.add_argument("--chunks", default="1000000,100000,50000")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    rows: list[tuple[str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bizos-bench-checks-") as tmp:
        before = export_commit(args.before, Path(tmp))
        result = measure(before, args.home, args.tenant, 0)
        print(f"before ({args.before}): {result}", flush=True)
        rows.append((f"before ({args.before})", 0, result))
    for chunk in chunks:
        result = measure(ROOT, args.home, args.tenant, chunk)
        print(f"ours, chunks of {chunk:,}: {result}", flush=True)
        rows.append(("ours", chunk, result))
    body = report(rows)
    print(body)
    print(machine_line())
    if args.record:
        command = "bench/source_checks_memory.py " + " ".join(sys.argv[1:])
        record_section(
            "Source checks: memory and CPU for one tenant (`bench/source_checks_memory.py`)",
            f"tenant {args.tenant}, {rows[-1][2]['rows']:,} landed rows",
            f".venv/bin/python {command}",
            f"{machine_line()}\n\n{body}",
        )


if __name__ == "__main__":
    main()
