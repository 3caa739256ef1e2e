"""Benchmark: Stripe charges from the sandbox into Parquet, ours vs a plain baseline.

Both contenders page the same sandbox over real HTTP (`limit=100`,
`starting_after`), in their own processes, one after the other, against one
sandbox server running in a third process. Peak memory is each contender
process's max RSS (from ``wait4``), so the two are measured the same way.

- ours: ``run_source`` (retries, cursor, load log, batched atomic landing into
  date partitions with de-duplication).
- baseline: httpx paging into a list, then ``pandas.json_normalize`` and
  ``DataFrame.to_parquet`` (what one writes by hand).

Usage: .venv/bin/python bench/ingest_stripe_charges.py [--charges 1000000] [--record]
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


def run_ours(url: str, secret: str, home: Path) -> int:
    from connectors.ingest import run_source
    from core.settings import get_settings

    settings = get_settings(home=home, database_url=None)
    [result] = run_source(
        settings,
        tenant_id=TENANT,
        source="stripe",
        secret=secret,
        base_url=f"{url}/stripe",
        tables=["charges"],
    )
    return result.rows_loaded


def run_baseline(url: str, secret: str, home: Path) -> int:
    import httpx
    import pandas as pd

    records: list[dict] = []
    params: dict[str, str | int] = {"limit": 100}
    with httpx.Client(
        base_url=f"{url}/stripe", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    ) as client:
        while True:
            page = client.get("/v1/charges", params=params).raise_for_status().json()
            records.extend(page["data"])
            if not page["has_more"]:
                break
            params["starting_after"] = page["data"][-1]["id"]
    frame = pd.json_normalize(records)
    # Nested objects json_normalize leaves as lists/dicts cannot go to Parquet as is.
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, (list, dict))).any():
            frame[column] = frame[column].map(json.dumps)
    home.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(home / "charges.parquet", index=False)
    return len(frame)


def contender(name: str, url: str, secret: str, home: Path) -> None:
    """Child process: run one contender and print its JSON result."""
    # Imports are not part of the measurement: warm them first.
    if name == "ours":
        import connectors.ingest  # noqa: F401
    else:
        import httpx  # noqa: F401
        import pandas  # noqa: F401
    started = time.perf_counter()
    rows = (run_ours if name == "ours" else run_baseline)(url, secret, home)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))


def measure(name: str, url: str, secret: str, home: Path) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--contender", name, "--url", url, "--home", str(home)],
        stdout=subprocess.PIPE,
        env={**os.environ, "BENCH_SECRET": secret},
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed (status {status})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["records_per_s"] = result["rows"] / result["seconds"]
    result["name"] = name
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charges", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="reuse generated data here")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--contender", choices=["ours", "baseline"])
    parser.add_argument("--url")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    if args.contender:
        contender(args.contender, args.url, os.environ["BENCH_SECRET"], args.home)
        return

    from sandbox.generator import generate_sources

    work = Path(tempfile.mkdtemp(prefix="bizos-bench-"))
    data = args.data or work / "data"
    if not (data / "ground_truth.json").exists():
        print(f"generating {args.charges:,} charges into {data} …", flush=True)
        t0 = time.perf_counter()
        generate_sources(
            data, tenants=[TENANT], scale=0.01, seed=7, counts={"stripe.charges": args.charges}
        )
        print(f"  generated in {time.perf_counter() - t0:.0f}s", flush=True)
    secret = json.loads((data / "credentials.json").read_text())[TENANT]["stripe"]["secret"]
    # The sandbox in a process of its own, so neither contender shares its CPU time.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sandbox.server import serve_forever; "
            "serve_forever(sys.argv[1], port=int(sys.argv[2]), access_log=False)",
            str(data),
            "8199",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:8199"
    try:
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"{url}/_sandbox/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        results = []
        for name in ("baseline", "ours"):
            print(f"running {name} …", flush=True)
            results.append(measure(name, url, secret, work / name))
            print(f"  {results[-1]}", flush=True)
    finally:
        server.terminate()
        server.wait()
    report(results, args)


def report(results: list[dict], args: argparse.Namespace) -> None:
    base = next(r for r in results if r["name"] == "baseline")
    lines = [
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.charges:,} Stripe charges, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n",
        "Command: `.venv/bin/python bench/ingest_stripe_charges.py"
        f" --charges {args.charges} --record`\n",
        "| contender | records | seconds | records/s | peak RSS (MB) | speed vs baseline "
        "| memory vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['seconds']:.1f} | {r['records_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['records_per_s'] / base['records_per_s']:.2f}x "
            f"| {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nEach section is one run, newest last.\n")
        with RESULTS.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
