"""Benchmark: ``dbt build`` of every model on each warehouse target, on the same lake.

A lake of N tenants is made once the way the pipeline makes it: the sandbox
generator's data, served by the sandbox, loaded by ``run_source`` for every
source read by time (SP-API's catalog has no time cursor and needs its own token
server: its staging models build empty) and by ``ingest_crm_leads`` for each
tenant's CRM export. Then each target builds all models from that one lake:

- ``duckdb``: dbt reads the Parquet lake directly (``BIZOS_LAKE_DIR``).
- ``postgres``: the lake is first copied into ``raw`` (``warehouse.raw_tables.
  load_tenant``, per table and tenant, as the ``raw_tables`` asset does), timed
  apart, then the same ``dbt build`` runs on a fresh database.
- ``spark``: dbt-spark in session mode over pyspark ``local[*]`` from its own
  virtualenv (``warehouse.spark_target.spark_build``, the ``spark`` selector of
  dbt/selectors.yml: the same nodes), reading the same lake as ``raw.*`` views; the
  time includes starting the JVM and the metastore, as every Spark build pays.

``dbt build --exclude-resource-type unit_test`` (the pipeline's arguments, all
tenants at once, models, seeds and data tests), in a fresh target folder, so each
target parses the project once. Rows per second is the lake's rows over the
build's wall time.

A target is an entry of ``TARGETS``: a name and a function that turns the lake
into the ``Settings`` dbt builds with (and does any loading first, and says how
to build when it is not the platform's ``dbt``).

Usage: .venv/bin/python bench/warehouse_build.py [--tenants 10] [--scale 1.0]
       [--targets duckdb,postgres,spark] [--record]
(Postgres at ``BIZOS_BENCH_PG``, default postgresql://postgres@127.0.0.1:5432/postgres)
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_line, record_section  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402

DBT = Path(sys.executable).with_name("dbt")
SERVER = os.environ.get("BIZOS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


@dataclass
class Prepared:
    settings: Settings
    load_s: float = 0.0
    """Time to put the lake where the target's dbt reads it (0 when it reads the lake)."""
    cleanup: Callable[[], None] | None = None
    build: Callable[[Settings, Path], tuple[float, str]] | None = None
    """How this target builds, when not with the platform's own ``dbt`` (``dbt_build``)."""


def make_lake(home: Path, tenants: list[str], scale: float) -> int:
    """Generate, serve and ingest the sandbox's sources for ``tenants``; returns the
    lake's row count."""
    from connectors.ingest import run_source
    from connectors.sources import SOURCES
    from exports.crm_leads import ingest_crm_leads
    from sandbox.generator import generate_sources
    from sandbox.server.running import start_sandbox

    settings = get_settings(home=home, database_url=None)
    data = home / "sandbox-data"
    generate_sources(
        data,
        tenants=tenants,
        scale=scale,
        seed=7,
        with_crm_exports=True,
        inbox_dir=settings.inbox_dir,
    )
    timed_sources = [s for s, spec in SOURCES.items() if spec.read_by_time]
    with start_sandbox(data) as sandbox:
        for tenant in tenants:
            for source in timed_sources:
                token = sandbox.tenant_token(tenant, source)
                if source == "ga4":
                    import json

                    property_id = sandbox.credential(tenant, "ga4")["property_id"]
                    token = json.dumps({"access_token": token, "property_id": property_id})
                run_source(
                    settings,
                    tenant_id=tenant,
                    source=source,
                    secret=token,
                    base_url=sandbox.base_url(source),
                )
            ingest_crm_leads(settings, tenant)
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in settings.lake_dir.rglob("*.parquet")
        if "_quarantine" not in f.parts
    )


def prepare_duckdb(home: Path, tenants: list[str]) -> Prepared:
    return Prepared(get_settings(home=home, database_url=None))


def prepare_postgres(home: Path, tenants: list[str]) -> Prepared:
    from warehouse.lake_tables import lake_tables
    from warehouse.raw_tables import load_tenant

    name = f"bizos_bench_wh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    settings = get_settings(home=home, database_url=url)
    started = time.perf_counter()
    for table in lake_tables():
        for tenant in tenants:
            load_tenant(url, table, lake_dir=settings.lake_dir, tenant_id=tenant)

    def drop() -> None:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Prepared(settings, load_s=time.perf_counter() - started, cleanup=drop)


def spark_dbt_build(settings: Settings, run_dir: Path) -> tuple[float, str]:
    from warehouse.spark_target import spark_build

    started = time.perf_counter()
    build = spark_build(settings, run_dir)
    seconds = time.perf_counter() - started
    if not build.ok:
        raise SystemExit(f"dbt build failed on spark:\n{build.output[-4000:]}")
    return seconds, _summary(build.output)


def prepare_spark(home: Path, tenants: list[str]) -> Prepared:
    return Prepared(get_settings(home=home, database_url=None), build=spark_dbt_build)


TARGETS: dict[str, Callable[[Path, list[str]], Prepared]] = {
    "duckdb": prepare_duckdb,
    "postgres": prepare_postgres,
    "spark": prepare_spark,
}
"""Target name → how to ready the lake for it. The name is ``Settings.target``'s."""


def dbt_build(settings: Settings, run_dir: Path) -> tuple[float, str]:
    env = {
        **os.environ,
        **settings.dbt_env(),
        "DBT_TARGET_PATH": str(run_dir / "target"),
        "DBT_LOG_PATH": str(run_dir / "logs"),
        "DBT_USE_COLORS": "false",
    }
    env.pop("BIZOS_DBT_TENANT_ID", None)
    project = str(settings.dbt_project_dir)
    started = time.perf_counter()
    result = subprocess.run(
        [str(DBT), *BUILD_ARGS, "--project-dir", project, "--profiles-dir", project],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    output = f"{result.stdout}\n{result.stderr}"
    if result.returncode != 0:
        raise SystemExit(f"dbt build failed on {settings.target.value}:\n{output[-4000:]}")
    return seconds, _summary(output)


def _summary(output: str) -> str:
    """dbt's closing line (``PASS=.. WARN=.. ERROR=..``); the last, where one process
    ran several builds."""
    done = [line.split("Done.", 1)[1].strip() for line in output.splitlines() if "Done." in line]
    return done[-1] if done else ""


def run(
    tenants: int,
    scale: float,
    *,
    targets: list[str],
    record: bool = False,
    command: str = "",
) -> list[dict[str, Any]]:
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {unknown}: one of {', '.join(TARGETS)}")
    names = [f"t{i:03d}" for i in range(tenants)]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bizos-bench-wh-") as tmp:
        home = Path(tmp) / "home"
        print(f"making a lake of {tenants} tenants at scale {scale} …", flush=True)
        started = time.perf_counter()
        rows = make_lake(home, names, scale)
        print(f"  {rows:,} lake rows in {time.perf_counter() - started:.0f}s", flush=True)
        for target in targets:
            print(f"{target}: preparing …", flush=True)
            prepared = TARGETS[target](home, names)
            try:
                print(f"{target}: dbt build …", flush=True)
                build = prepared.build or dbt_build
                seconds, summary = build(prepared.settings, Path(tmp) / f"dbt-{target}")
            finally:
                if prepared.cleanup:
                    prepared.cleanup()
            results.append(
                {
                    "target": target,
                    "rows": rows,
                    "load_s": prepared.load_s,
                    "build_s": seconds,
                    "summary": summary,
                }
            )
            print(f"  {results[-1]}", flush=True)
    text = report(results, tenants, scale)
    print(text)
    if record:
        record_section(
            "Warehouse: `dbt build` of every model per target (`bench/warehouse_build.py`)",
            f"{tenants} tenants at scale {scale}",
            command
            or f".venv/bin/python bench/warehouse_build.py --tenants {tenants} --scale {scale}"
            f" --targets {','.join(targets)} --record",
            text,
        )
    return results


def report(results: list[dict[str, Any]], tenants: int, scale: float) -> str:
    first = results[0]["build_s"] if results else 1.0
    lines = [
        machine_line(),
        "",
        "| target | tenants | lake rows | load into target (s) | dbt build (s) | lake rows/s "
        f"| build vs {results[0]['target'] if results else '-'} | dbt's summary |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {tenants} | {r['rows']:,} | {r['load_s']:.1f} | {r['build_s']:.1f} "
            f"| {r['rows'] / r['build_s']:,.0f} | {r['build_s'] / first:.2f}x | {r['summary']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--scale", type=float, default=1.0, help="sandbox generator scale")
    parser.add_argument("--targets", default="duckdb,postgres,spark")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    run(
        args.tenants,
        args.scale,
        targets=args.targets.split(","),
        record=args.record,
        command=".venv/bin/python bench/warehouse_build.py " + shlex.join(sys.argv[1:]),
    )


if __name__ == "__main__":
    main()
