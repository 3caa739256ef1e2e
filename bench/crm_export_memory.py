"""Benchmark: peak memory and speed of loading one large CRM export, ours vs the old way.

One tenant's inbox holds one export of the requested size, written by a fast
writer from rows of the sandbox's own export generator (``iter_export_leads``):
unique lead ids, 1% of rows repeating an earlier lead (a later update), and the
generator's every-29th unusable email, so de-duplication and the quality rules
have work to do. Each contender loads it in a process of its own; peak memory is
that process's max RSS (from ``wait4``), so both are measured the same way.

- ours: ``exports.crm_leads.ingest_crm_leads`` (streaming parse, batched checks,
  two-pass de-duplication through a staging file).
- baseline: the whole-file loader this replaced (``read_bytes``, every row as a
  dict, GX over one pandas frame), taken from git at ``BASELINE_COMMIT``.

Usage: .venv/bin/python bench/crm_export_memory.py [--mib 1024] [--baseline-mib 200] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT = "bench-tenant"
RESULTS = ROOT / "bench" / "RESULTS.md"
BASELINE_COMMIT = "61bc9f3dd1f4d19145999a679685359df3740fa6"
"""The last commit with the whole-file loader."""


def write_export(path: Path, size_bytes: int) -> int:
    """Write an export of about ``size_bytes``; returns its data lines."""
    from core.contracts.crm_export import REQUIRED_COLUMNS
    from sandbox.crm_export import iter_export_leads

    templates = []
    for lead in iter_export_leads(TENANT, leads=5000, seed=7):
        rest = [
            lead.export_email,
            lead.first_name,
            lead.last_name,
            lead.company,
            lead.title,
            lead.industry,
            lead.company_size,
            lead.country,
            lead.source,
            lead.created_at,
            lead.status,
            lead.owner,
            lead.utm_campaign,
        ]
        templates.append("," + ",".join(f'"{v}"' if "," in v else v for v in rest) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = lines = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        header = ",".join([*REQUIRED_COLUMNS, "owner", "utm_campaign"]) + "\n"
        fh.write(header)
        written += len(header)
        while written < size_bytes:
            block = []
            for i, rest in enumerate(templates):
                n = lines + i
                lead_id = f"BEN-{n - 50:09d}" if n % 100 == 99 else f"BEN-{n:09d}"
                block.append(lead_id + rest)
            text = "".join(block)
            fh.write(text)
            written += len(text.encode("utf-8"))
            lines += len(block)
    past = time.time() - 60
    os.utime(path, (past, past))
    return lines


def load_baseline_modules(work: Path) -> None:
    """Put the old loader, from git, on the path as package ``baseline_exports``."""
    package = work / "baseline_exports"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("crm_csv", "crm_leads"):
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:exports/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = source.replace("from exports.", "from baseline_exports.")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(work))


def contender(name: str, home: Path, work: Path) -> None:
    """Child process: load the tenant's inbox once and print a JSON result."""
    from core.settings import get_settings

    settings = get_settings(home=home, database_url=None)
    if name == "baseline":
        load_baseline_modules(work)
        from baseline_exports.crm_leads import ingest_crm_leads  # type: ignore[import-not-found]
    else:
        from exports.crm_leads import ingest_crm_leads
    import great_expectations  # noqa: F401  (imports are not part of the measurement)

    started = time.perf_counter()
    load = ingest_crm_leads(settings, TENANT)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows_loaded": load.rows_loaded,
                "rows_quarantined": load.rows_quarantined,
                "lines_read": getattr(load, "lines_read", None),
                "seconds": seconds,
            }
        )
    )


def measure(name: str, home: Path, work: Path) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--contender", name, "--home", str(home), "--work", str(work)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed (status {status})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["name"] = name
    return result


def run_size(name: str, mib: int, work: Path) -> dict:
    home = work / f"{name}-{mib}"
    path = home / "inbox" / TENANT / "crm" / "export.csv"
    print(f"writing a {mib} MiB export …", flush=True)
    lines = write_export(path, mib * 1024 * 1024)
    file_mb = path.stat().st_size / 1024 / 1024
    print(f"running {name} on {file_mb:,.0f} MiB ({lines:,} lines) …", flush=True)
    result = measure(name, home, work)
    result.update(file_mib=file_mb, lines=lines)
    result["rows_per_s"] = lines / result["seconds"]
    print(f"  {result}", flush=True)
    path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="export size for ours")
    parser.add_argument(
        "--baseline-mib", type=int, default=200, help="size both run on (0: skip the baseline)"
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--contender", choices=["ours", "baseline"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.contender:
        contender(args.contender, args.home, args.work)
        return
    work = Path(tempfile.mkdtemp(prefix="bizos-bench-crm-"))
    results = []
    if args.baseline_mib:
        results.append(run_size("baseline", args.baseline_mib, work))
        results.append(run_size("ours", args.baseline_mib, work))
    if args.mib != args.baseline_mib:
        results.append(run_size("ours", args.mib, work))
    report(results, args)


def report(results: list[dict], args: argparse.Namespace) -> None:
    lines = [
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, one CRM export, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n",
        f"Command: `.venv/bin/python bench/crm_export_memory.py --mib {args.mib} "
        f"--baseline-mib {args.baseline_mib} --record`\n",
        "| contender | file (MiB) | lines | rows loaded | rows quarantined | seconds | lines/s "
        "| peak RSS (MB) | RSS / file |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['file_mib']:,.0f} | {r['lines']:,} | {r['rows_loaded']:,} "
            f"| {r['rows_quarantined']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['peak_rss_mb'] / r['file_mib']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        with RESULTS.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
