"""Benchmark: dbt's first build (phase 1 of a batch) as the lake grows in tenants.

At 1,000 tenants the end-to-end run's first dbt build took 573 s against 35 s at 100
on the same 1 M events (bench/RESULTS.md): it grew with the lake's file count, not
its rows. Ingesting 1,000 tenants takes hours, most of it providers' rate limits, so
this benchmark makes the many-tenant lake by copying a real one: a base lake from
``bench/end_to_end.py --home`` (every source, as the pipeline lands it), each
tenant's files copied under new tenant ids (the ``tenant_id`` column rewritten), up
to ``--tenants``. The file layout, file count per tenant and rows per file are the
pipeline's own.

Then, for each contender (``ours``: this tree; ``before``: another tree, e.g. a
``git archive`` of main, with ``--before-root``), on a fresh warehouse over that one
lake, one after the other:

1. ``batch``: the batch's phase-1 build for every tenant at once
   (``pipelines.batch.dbt_build``, what ``bizos run --batch-size 0`` does);
2. ``again``: the same build once more (the next day's refresh, nothing new);
3. ``one tenant``: phase 1 for a single tenant (a per-tenant run's build).

Wall seconds, CPU seconds (dbt's process) and dbt's peak RSS for each.

    .venv/bin/python bench/dbt_many_tenants.py --base-home /tmp/e2e-base --tenants 1000 \
        [--before-root /tmp/main-before] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.machine import machine_line, record_section  # noqa: E402

TENANT_DIR = re.compile(r"^tenant=(.+)$")

BUILD = """
import json, sys, time, uuid
from core.settings import get_settings
from pipelines.batch import dbt_build
tenants = json.loads(sys.argv[1])
settings = get_settings()
started = time.perf_counter()
ok = dbt_build(settings, tenants, "dbt_intermediate", batch_id=f"bench-{uuid.uuid4().hex[:8]}",
               log=lambda m: None, log_path=settings.home / "dbt.log")
print(json.dumps({"ok": ok, "seconds": time.perf_counter() - started}))
"""
"""One phase-1 build in a process of its own, importing the contender's code."""


def tenant_folders(lake: Path) -> dict[str, list[Path]]:
    """Each tenant's partition folders (``.../tenant=<t>``), quarantine aside."""
    found: dict[str, list[Path]] = {}
    for folder in lake.rglob("tenant=*"):
        if "_quarantine" in folder.parts or not folder.is_dir():
            continue
        match = TENANT_DIR.match(folder.name)
        if match:
            found.setdefault(match.group(1), []).append(folder)
    return found


def _copy_tenant(job: tuple[list[str], str, str]) -> int:
    """Copy one base tenant's folders under ``new`` with ``tenant_id`` rewritten."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folders, base, new = job
    written = 0
    for folder in map(Path, folders):
        target = folder.with_name(f"tenant={new}")
        for src in folder.rglob("*.parquet"):
            table = pq.read_table(src)
            if "tenant_id" in table.column_names:
                idx = table.column_names.index("tenant_id")
                column = pa.array([new] * table.num_rows, type=table.schema.field(idx).type)
                table = table.set_column(idx, table.schema.field(idx), column)
            out = target / src.relative_to(folder)
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out)
            written += 1
    return written


def replicate(lake: Path, tenants: int) -> list[str]:
    """Copy the base lake's tenants round-robin until ``tenants`` exist; their ids."""
    base = tenant_folders(lake)
    names = sorted(base)
    ids = list(names)
    jobs = []
    for i in range(tenants - len(names)):
        src = names[i % len(names)]
        new = f"{src}-c{i // len(names):04d}"
        ids.append(new)
        jobs.append(([str(f) for f in base[src]], src, new))
    started, files = time.monotonic(), 0
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for n, written in enumerate(pool.map(_copy_tenant, jobs, chunksize=8), 1):
            files += written
            if n % max(len(jobs) // 10, 1) == 0:
                print(f"  copied {n}/{len(jobs)} tenants ({files:,} files)", flush=True)
    print(f"  {len(ids)} tenants in {time.monotonic() - started:.0f}s", flush=True)
    return ids


def lake_stats(lake: Path) -> tuple[int, int]:
    """(Parquet files, rows) of the lake, quarantine aside."""
    import pyarrow.parquet as pq

    files = [f for f in lake.rglob("*.parquet") if "_quarantine" not in f.parts]
    return len(files), sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def timed_build(root: Path, home: Path, lake: Path, tenants: list[str]) -> dict[str, Any]:
    """One phase-1 build with the code at ``root``: wall, CPU and peak RSS of the tree."""
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "BIZOS_HOME": str(home),
        "BIZOS_LAKE_URL": str(lake),
    }
    env.pop("BIZOS_DATABASE_URL", None)
    started = time.perf_counter()
    proc = psutil.Popen(
        [sys.executable, "-c", BUILD, json.dumps(tenants)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, cpu = 0, {}
    while proc.poll() is None:
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        peak = max(peak, total)
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({root}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    if not result["ok"]:
        log = (home / "dbt.log").read_text()[-3000:]
        raise SystemExit(f"dbt build failed ({root}):\n{log}")
    return {"wall_s": wall, "cpu_s": sum(cpu.values()), "peak_rss_mb": peak / 2**20}


def measure(
    lake: Path, tenants: list[str], contenders: dict[str, Path], work: Path
) -> list[dict[str, Any]]:
    rows = []
    for name, root in contenders.items():
        home = work / f"home-{name}"
        home.mkdir()
        for step, ids in (("batch", tenants), ("again", tenants), ("one tenant", tenants[:1])):
            print(f"{name}: {step} ({len(ids)} tenants) …", flush=True)
            result = timed_build(root, home, lake, ids)
            print(f"  {result}", flush=True)
            rows.append({"contender": name, "step": step, "tenants": len(ids), **result})
        shutil.rmtree(home, ignore_errors=True)
    return rows


def report(rows: list[dict[str, Any]], files: int, lake_rows: int, tenants: int) -> str:
    base = {(r["step"]): r for r in rows if r["contender"] == rows[0]["contender"]}
    lines = [
        machine_line(),
        "",
        f"Lake: {tenants:,} tenants, {files:,} Parquet files, {lake_rows:,} rows.",
        "",
        "| contender | build | tenants built | wall (s) | CPU (s) | peak RSS (MB) "
        f"| {rows[0]['contender']} wall / this |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = base[r["step"]]["wall_s"] / r["wall_s"]
        lines.append(
            f"| {r['contender']} | {r['step']} | {r['tenants']:,} | {r['wall_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {r['peak_rss_mb']:,.0f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-home",
        type=Path,
        required=True,
        help="a BIZOS_HOME whose lake end_to_end.py made (--home)",
    )
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--before-root", type=Path, help="another tree to build with, first")
    parser.add_argument("--work", type=Path, help="where the copied lake goes (default: tmp)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bizos-bench-dbt-"))
    lake = work / "lake"
    if not lake.exists():
        print(f"copying {args.base_home / 'lake'} to {lake} …", flush=True)
        shutil.copytree(args.base_home / "lake", lake, ignore=shutil.ignore_patterns("_quarantine"))
        tenants = replicate(lake, args.tenants)
    else:
        tenants = sorted(tenant_folders(lake))[: args.tenants]
    files, lake_rows = lake_stats(lake)
    print(f"lake: {len(tenants)} tenants, {files:,} files, {lake_rows:,} rows", flush=True)
    contenders = {"ours": ROOT}
    if args.before_root:
        contenders = {"before": args.before_root.resolve(), **contenders}
    for name in contenders:
        shutil.rmtree(work / f"home-{name}", ignore_errors=True)
    rows = measure(lake, tenants, contenders, work)
    text = report(rows, files, lake_rows, len(tenants))
    print(text)
    if args.record:
        record_section(
            "dbt's first build as tenants grow (`bench/dbt_many_tenants.py`)",
            f"{len(tenants):,} tenants, {files:,} lake files",
            ".venv/bin/python bench/dbt_many_tenants.py " + shlex.join(sys.argv[1:]),
            text,
        )


if __name__ == "__main__":
    main()
