"""Benchmark: one tenant's lead scores into Postgres, our publish vs pandas ``to_sql``.

The same Arrow table (the lead-scores mart of one tenant, as the tests build
it) goes into an empty table of the same shape, at a few sizes, side by side in
one run against one Postgres server:

- ours: ``serving.publish.publish_lead_scores`` (contract check and casts, one
  transaction: advisory lock, DELETE of the tenant's rows, COPY, publish log).
- pandas, ``method=None``: ``table.to_pandas()`` then ``DataFrame.to_sql`` through
  SQLAlchemy 2 and psycopg 3 (an executemany, which SQLAlchemy batches into
  multi-row INSERTs, its "insertmanyvalues").
- pandas, ``method="multi"``: one multi-row ``INSERT`` per ``chunksize`` rows
  (1,000: Postgres takes at most 65,535 parameters a statement, and the table
  has 23 columns). SQLAlchemy compiles each such statement afresh, about 3.6 ms
  a row here, so it runs only at sizes up to ``--multi-max`` (10,000).

- floor: the same rows as CSV, rendered before the clock starts, COPYed into the
  pandas table in one statement: what Postgres itself takes to store them (WAL,
  the primary key, two indexes, check constraints), which no client can go under.

pandas writes into ``bench.lead_scores_pandas``, made ``LIKE serving.lead_scores
INCLUDING ALL`` (same columns, types, primary key and indexes). Every run starts
from empty tables (truncated outside the clock), and each contender's row count
is checked after it. The conversion to pandas is timed as part of its publish,
as ``conform`` is part of ours. Wall time of each call (which includes the
server's work), and the client process's CPU time, the median of ``--repeats``
runs at sizes up to 100,000 rows and one run above.

Usage: .venv/bin/python bench/publish_vs_pandas.py [--sizes 10000,100000,1000000] [--record]
(Postgres at ``BIZOS_BENCH_PG``, default postgresql://postgres@127.0.0.1:5432/postgres)
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_line, record_section  # noqa: E402
from core.contracts.lead_scores import LEAD_SCORES  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from serving.postgres_store import csv_chunks  # noqa: E402
from serving.publish import publish_lead_scores  # noqa: E402
from tests.test_serving_contract import lead_scores_table  # noqa: E402

SERVER = os.environ.get("BIZOS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TENANT = "acme"
MULTI_CHUNK = 1_000


def make_database() -> tuple[str, str]:
    name = f"bizos_bench_publish_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, SERVER.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(call: Callable[[], Any], repeats: int, setup: Callable[[], Any]) -> tuple[float, float]:
    """Median wall and client CPU seconds of ``repeats`` calls, each after ``setup``."""
    walls, cpus = [], []
    for _ in range(repeats):
        setup()
        started, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def run(
    sizes: list[int],
    *,
    repeats: int = 3,
    multi_max: int = 10_000,
    contenders: tuple[str, ...] = ("floor", "ours", "pandas", "pandas-multi"),
    record: bool = False,
    command: str = "",
) -> list[dict[str, Any]]:
    import sqlalchemy

    name, url = make_database()
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as home:
            settings: Settings = get_settings(home=Path(home), database_url=url)
            # The first publish creates the serving schema (migrations): not timed.
            publish_lead_scores(settings, "warmup", lead_scores_table("warmup", 10))
            engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE SCHEMA bench")
                conn.exec_driver_sql(
                    "CREATE TABLE bench.lead_scores_pandas (LIKE serving.lead_scores INCLUDING ALL)"
                )
                columns = [
                    row[0]
                    for row in conn.exec_driver_sql(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = 'bench' AND table_name = 'lead_scores_pandas'"
                    )
                ]

            def empty_tables() -> None:
                """Every contender starts from empty tables, outside the clock."""
                with engine.begin() as conn:
                    conn.exec_driver_sql("TRUNCATE bench.lead_scores_pandas, serving.lead_scores")

            for size in sizes:
                table = lead_scores_table(TENANT, size)
                n = repeats if size <= 100_000 else 1

                def ours(table: Any = table) -> None:
                    publish_lead_scores(settings, TENANT, table)

                def pandas_call(method: str | None, table: Any = table) -> Callable[[], None]:
                    def call() -> None:
                        frame = table.to_pandas()
                        # published_at is ours to stamp; the pandas side stamps it too.
                        frame["published_at"] = frame["created_at"].max()
                        frame[[c for c in columns if c in frame.columns]].to_sql(
                            "lead_scores_pandas",
                            engine,
                            schema="bench",
                            if_exists="append",
                            index=False,
                            method=method,
                            chunksize=MULTI_CHUNK if method == "multi" else None,
                        )

                    return call

                rendered = list(csv_chunks(LEAD_SCORES.conform(TENANT, table), datetime.now(UTC)))

                def floor(rendered: list[bytes] = rendered) -> None:
                    with psycopg.connect(url) as conn, conn.cursor() as cur:
                        copy_sql = (
                            "COPY bench.lead_scores_pandas"
                            f" ({', '.join(LEAD_SCORES.served_columns)}) FROM STDIN (FORMAT csv)"
                        )
                        with cur.copy(copy_sql) as copy:
                            for chunk in rendered:
                                copy.write(chunk)

                calls: dict[str, Callable[[], None]] = {
                    "floor": floor,
                    "ours": ours,
                    "pandas": pandas_call(None),
                    "pandas-multi": pandas_call("multi"),
                }
                row: dict[str, Any] = {"rows": size, "repeats": n}
                for contender in contenders:
                    if contender == "pandas-multi" and size > multi_max:
                        continue
                    print(f"{size:,} rows: {contender} …", flush=True)
                    row[contender], row[f"{contender} cpu"] = timed(
                        calls[contender], n, empty_tables
                    )
                    where = (
                        "serving.lead_scores" if contender == "ours" else "bench.lead_scores_pandas"
                    )
                    with psycopg.connect(url) as pg:
                        found = pg.execute(f"SELECT count(*) FROM {where}").fetchone()
                    if found is None or found[0] != size:
                        raise SystemExit(f"{contender} stored {found} rows, not {size}")
                    print(f"  {row[contender]:.3f} s (client CPU {row[f'{contender} cpu']:.3f} s)")
                results.append(row)
            engine.dispose()
    finally:
        drop_database(name)
    text = report(results, contenders)
    print(text)
    if record:
        record_section(
            "Publish: one tenant's lead scores into Postgres, ours vs pandas `to_sql`"
            " (`bench/publish_vs_pandas.py`)",
            ", ".join(f"{s:,}" for s in sizes) + " rows",
            command
            or ".venv/bin/python bench/publish_vs_pandas.py --sizes "
            + ",".join(map(str, sizes))
            + " --record",
            text,
        )
    return results


def report(results: list[dict[str, Any]], contenders: tuple[str, ...]) -> str:
    lines = [
        machine_line(),
        "",
        "| rows | runs (median) | "
        + " | ".join(f"{c} (s)" for c in contenders)
        + " | ours rows/s | ours / floor | pandas / ours | pandas-multi / ours "
        + "| client CPU (s): "
        + ", ".join(contenders)
        + " |",
        "|---:|---:|" + "---:|" * (len(contenders) + 5),
    ]
    for r in results:
        ours = r.get("ours")
        ratios = [
            f"{r[c] / ours:.1f}x" if ours and c in r else "-" for c in ("pandas", "pandas-multi")
        ]
        lines.append(
            f"| {r['rows']:,} | {r['repeats']} | "
            + " | ".join(f"{r[c]:.3f}" if c in r else "not run" for c in contenders)
            + (f" | {r['rows'] / ours:,.0f} | " if ours else " | - | ")
            + (f"{ours / r['floor']:.2f}x | " if ours and "floor" in r else "- | ")
            + " | ".join(ratios)
            + " | "
            + ", ".join(f"{r[c + ' cpu']:.2f}" if c in r else "-" for c in contenders)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--multi-max", type=int, default=10_000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    run(
        [int(s) for s in args.sizes.split(",")],
        repeats=args.repeats,
        multi_max=args.multi_max,
        record=args.record,
        command=".venv/bin/python bench/publish_vs_pandas.py " + shlex.join(sys.argv[1:]),
    )


if __name__ == "__main__":
    main()
