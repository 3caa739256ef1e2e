"""Benchmark: one lead's score read beyond the API's copies budget, embedded store.

When more tenants are read than ``BIZOS_API_SNAPSHOT_MAX_ROWS`` holds, the embedded
reader answers a tenant that does not fit from its Parquet file, keeping nothing.
Side by side, in one process, on the same published files:

- ``whole file``: the tenant's file read whole (every served column of every row),
  the row found in Arrow (``EmbeddedReader._build(keep=False)``), what every such
  read did before;
- ``row group``: the key columns, then only the row group holding the row
  (``EmbeddedReader._read_row``), on files written in groups of ``ROW_GROUP_ROWS``,
  the key columns decoded at every read (the reader's kept ones dropped first);
- ``row group, keys kept``: the same, with the key columns the reader keeps per
  file version (``EmbeddedReader._key_columns_of``): what a read costs after the
  tenant's first.

Each read is timed on its own (median and p99 over ``--reads`` random leads), and
both give the same body, which the benchmark checks.

    .venv/bin/python bench/serving_cold_read.py --leads 30000 --reads 300 [--record]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_line, record_section  # noqa: E402
from bench.serving_api import tenant_rows  # noqa: E402
from core.contracts.serving_tables import SERVING_TABLES  # noqa: E402
from core.settings import Settings  # noqa: E402
from serving.encoders import encode_lead_score  # noqa: E402
from serving.publish import publish_lead_scores  # noqa: E402
from serving.readers import EmbeddedReader, select_row  # noqa: E402


def timed(read, keys: list[str]) -> tuple[list[float], list[bytes]]:  # noqa: ANN001
    seconds, bodies = [], []
    for key in keys:
        started = time.perf_counter()
        bodies.append(read(key))
        seconds.append(time.perf_counter() - started)
    return seconds, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=30_000, help="leads of the tenant")
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()

    contract = SERVING_TABLES["lead_scores"]
    encode = encode_lead_score
    with tempfile.TemporaryDirectory(prefix="bizos-cold-") as tmp:
        settings = Settings(home=Path(tmp), database_url=None)
        rows = tenant_rows("acme", args.leads, seed=1)
        publish_lead_scores(settings, "acme", rows)
        reader = EmbeddedReader(settings)
        leads = rows.column("lead_id").to_pylist()
        keys = [random.Random(7).choice(leads) for _ in range(args.reads)]

        def whole_file(lead: str) -> bytes:
            snap = reader._build(contract, "acme", keep=False)
            [served] = select_row(snap, encode, {"lead_id": lead}).rows or []
            return served.body

        def row_group(lead: str) -> bytes:
            reader._key_columns.clear()
            reader._key_columns_bytes = 0
            return keys_kept(lead)

        def keys_kept(lead: str) -> bytes:
            snap = reader._read_row(contract, "acme", (lead,))
            [served] = select_row(snap, encode, {"lead_id": lead}).rows or []
            return served.body

        whole_file(keys[0]), row_group(keys[0])  # imports and first-touch costs
        old_s, old_bodies = timed(whole_file, keys)
        new_s, new_bodies = timed(row_group, keys)
        kept_s, kept_bodies = timed(keys_kept, keys)
        assert old_bodies == new_bodies == kept_bodies, "the reads disagree"
        size = os.path.getsize(next(Path(tmp).rglob("tenant=acme.parquet")))

    def figures(seconds: list[float]) -> tuple[float, float]:
        ordered = sorted(seconds)
        return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000

    old_med, old_p99 = figures(old_s)
    new_med, new_p99 = figures(new_s)
    kept_med, kept_p99 = figures(kept_s)
    table = [
        "| read | leads | file (MB) | reads | median (ms) | p99 (ms) | whole file / this |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| whole file | {args.leads:,} | {size / 1e6:.1f} | {args.reads} | {old_med:.2f} | "
        f"{old_p99:.2f} | 1.00x |",
        f"| row group | {args.leads:,} | {size / 1e6:.1f} | {args.reads} | {new_med:.2f} | "
        f"{new_p99:.2f} | {old_med / new_med:.1f}x |",
        f"| row group, keys kept | {args.leads:,} | {size / 1e6:.1f} | {args.reads} "
        f"| {kept_med:.2f} | {kept_p99:.2f} | {old_med / kept_med:.1f}x |",
    ]
    print("\n".join(table))
    if args.record:
        record_section(
            "Serving: one lead read beyond the copies budget (`bench/serving_cold_read.py`)",
            f"{args.leads:,} leads, {args.reads} reads",
            f".venv/bin/python bench/serving_cold_read.py --leads {args.leads} "
            f"--reads {args.reads} --record",
            machine_line() + "\n\n" + "\n".join(table) + "\n",
        )


if __name__ == "__main__":
    main()
