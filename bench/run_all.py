"""One command for the benchmark suite: ingest, publish and warehouse, and the others on request.

    .venv/bin/python bench/run_all.py                 # the three, at full size
    .venv/bin/python bench/run_all.py --quick         # small sizes: a smoke test (~minutes)
    .venv/bin/python bench/run_all.py --only publish --record
    .venv/bin/python bench/run_all.py --with serving_api,daily_refresh

The suite's own benchmarks (``ingest``, ``publish``, ``warehouse``) run in this
process one after the other; with ``--record`` each appends a dated section to
bench/RESULTS.md with its command, the machine (cores, RAM, Python, load
average) and the ratios of that one run. The older benchmarks are options run
as they are, each by its own command line in a subprocess (``--with``); those
that record take ``--record`` themselves.

dlt (the ingest benchmark's third contender) is in the ``bench`` dependency group:
``.tools/bin/uv sync --group bench`` first, or ``--ingest-contenders pandas,ours``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUITE = ("ingest", "publish", "warehouse")
SIZES: dict[str, dict[str, dict[str, object]]] = {
    "full": {
        "ingest": {"records": 200_000},
        "publish": {"sizes": [10_000, 100_000, 1_000_000], "repeats": 3, "multi_max": 10_000},
        "warehouse": {"tenants": 10, "scale": 1.0},
    },
    "quick": {
        "ingest": {"records": 5_000},
        "publish": {"sizes": [1_000, 10_000], "repeats": 1, "multi_max": 1_000},
        "warehouse": {"tenants": 2, "scale": 0.05},
    },
}
OTHERS: dict[str, list[str]] = {
    "serving_api": ["bench/serving_api.py"],
    "serving_publish": ["bench/serving_publish.py"],
    "daily_refresh": ["bench/daily_refresh.py", "--tenants", "10", "--concurrency", "2"],
    "ingest_stripe_charges": ["bench/ingest_stripe_charges.py", "--charges", "100000"],
    "crm_export_memory": ["bench/crm_export_memory.py", "--mib", "20", "--baseline-mib", "20"],
    "lead_model": ["bench/lead_model.py"],
    "supplier_screening": ["bench/supplier_screening.py"],
    "end_to_end": ["bench/end_to_end.py"],
    "serving_cold_read": ["bench/serving_cold_read.py"],
}
"""The older benchmarks, by name: their own command line (their defaults unless
given here); ``end_to_end`` once that benchmark is in bench/."""
RECORDING = {
    "daily_refresh",
    "ingest_stripe_charges",
    "crm_export_memory",
    "end_to_end",
    "serving_cold_read",
}
"""Those of ``OTHERS`` that take ``--record``; the rest print their figures."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--only", default=",".join(SUITE), help=f"of {', '.join(SUITE)}")
    parser.add_argument("--with", dest="others", default="", help=f"also run: {', '.join(OTHERS)}")
    parser.add_argument("--ingest-contenders", default="pandas,dlt,ours")
    parser.add_argument("--warehouse-targets", default="duckdb,postgres,spark")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()

    sizes = SIZES["quick" if args.quick else "full"]
    command = ".venv/bin/python bench/run_all.py " + shlex.join(sys.argv[1:])
    chosen = [b for b in args.only.split(",") if b]
    unknown = [b for b in chosen if b not in SUITE]
    others = [b for b in args.others.split(",") if b]
    unknown += [b for b in others if b not in OTHERS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}")

    def ingest() -> None:
        from bench import ingest_cpu

        ingest_cpu.run(
            int(sizes["ingest"]["records"]),  # type: ignore[call-overload]
            sources=list(ingest_cpu.TABLES),
            contenders=args.ingest_contenders.split(","),
            record=args.record,
            command=command,
        )

    def publish() -> None:
        from bench import publish_vs_pandas

        size = sizes["publish"]
        publish_vs_pandas.run(
            list(size["sizes"]),  # type: ignore[call-overload]
            repeats=int(size["repeats"]),  # type: ignore[call-overload]
            multi_max=int(size["multi_max"]),  # type: ignore[call-overload]
            record=args.record,
            command=command,
        )

    def warehouse() -> None:
        from bench import warehouse_build

        size = sizes["warehouse"]
        warehouse_build.run(
            int(size["tenants"]),  # type: ignore[call-overload]
            float(size["scale"]),  # type: ignore[arg-type]
            targets=args.warehouse_targets.split(","),
            record=args.record,
            command=command,
        )

    steps: dict[str, Callable[[], None]] = {
        "ingest": ingest,
        "publish": publish,
        "warehouse": warehouse,
    }
    timings: list[tuple[str, float]] = []
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        steps[name]()
        timings.append((name, time.perf_counter() - started))
    for name in others:
        print(f"\n=== {name} (its own command) ===", flush=True)
        started = time.perf_counter()
        record = ["--record"] if args.record and name in RECORDING else []
        argv = [sys.executable, *OTHERS[name], *record]
        subprocess.run(argv, cwd=ROOT, check=True)
        timings.append((name, time.perf_counter() - started))
    print("\n" + "\n".join(f"{name}: {seconds:.0f}s" for name, seconds in timings))


if __name__ == "__main__":
    main()
