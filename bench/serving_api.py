"""Serving API speed: ours on both stores, the obvious endpoint, and pgbench, in one go.

One data set for all four: ``--leads`` leads in ``--tenants`` tenants, published to a
fresh Postgres database and to an embedded store. Then, one after the other on the
same machine, ``wrk`` with ``--connections`` connections for ``--duration`` seconds
(after a warm-up of the same length) asks ``GET /v1/leads/{id}/score`` for random
leads of random tenants, each with its tenant's key. Our API is measured warm: its
server counts as up when ``/ready`` says 200 (embedded: every tenant's snapshot is
built before it listens), and on Postgres the measurement waits after the warm-up
until ``/metrics`` reports no copy loading in any worker.

- our API on Postgres (reading as its own login role) and embedded, ``--workers``
  uvicorn workers each;
- the obvious FastAPI + async psycopg endpoint (``bench/obvious_endpoint.py``), the
  same number of workers;
- pgbench, prepared, the same lead query (the database's own ceiling).

Prints a Markdown table (req/s, p50, p99) and the machine's load before and after.
Needs wrk and pgbench on PATH and a Postgres server (``BIZOS_BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) where it may create a database.

    .venv/bin/python bench/serving_api.py [--leads 1000000 --tenants 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings, get_settings  # noqa: E402
from serving.api_role import create_api_role  # noqa: E402
from serving.keys import create_key  # noqa: E402
from serving.publish import publish_lead_scores  # noqa: E402
from tests.postgres import with_database  # noqa: E402

SERVER = os.environ.get("BIZOS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEAD_QUERY = "SELECT * FROM serving.lead_scores WHERE tenant_id = $1 AND lead_id = $2"


def tenant_rows(tenant_id: str, n: int, seed: int) -> pa.Table:
    """``n`` leads ``lead-0000``...; built column-wise, a million rows take seconds."""
    ids = range(n)
    scores = [(i * 37 + seed * 11) % 101 for i in ids]
    grades = ["A" if s >= 75 else "B" if s >= 50 else "C" if s >= 25 else "D" for s in scores]
    created = pa.array([1_736_154_000_000_000 + i * 60_000_000 for i in ids], pa.int64())
    return pa.table(
        {
            "tenant_id": [tenant_id] * n,
            "lead_id": [f"lead-{i:04d}" for i in ids],
            "email": [f"person{i}@{tenant_id}.example" for i in ids],
            "first_name": [f"First{i}" for i in ids],
            "last_name": [f"Last{i}" for i in ids],
            "company": [f"Company {i % 13}" for i in ids],
            "title": ["VP Sales" if i % 3 == 0 else "Engineer" for i in ids],
            "industry": ["software"] * n,
            "company_size": ["51-200"] * n,
            "country": ["US"] * n,
            "source": ["website"] * n,
            "status": ["new"] * n,
            "created_at": created.cast(pa.timestamp("us", tz="UTC")),
            "score": scores,
            "grade": grades,
            "reasons": [f"title_seniority:+{s // 2}|company_size:+{s - s // 2}" for s in scores],
            "score_model": ["rules_v0"] * n,
            "score_status": ["scored"] * n,
            "probability": [s / 100 for s in scores],
            "fit_score": [s // 2 for s in scores],
            "engagement_score": [s - s // 2 for s in scores],
            "is_mql": [s >= 50 for s in scores],
            "reasons_json": [
                json.dumps(
                    [
                        {
                            "code": "title_seniority",
                            "label": "title seniority",
                            "points": s // 2,
                            "evidence": f"crm_export.leads:lead-{i:04d}#title",
                        },
                        {
                            "code": "company_size",
                            "label": "company size",
                            "points": s - s // 2,
                            "evidence": None,
                        },
                    ]
                )
                for i, s in zip(ids, scores, strict=True)
            ],
            "model_version": ["rules_v0-1"] * n,
            "config_version": [None] * n,
            "scored_at": created.cast(pa.timestamp("us", tz="UTC")),
        }
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(args: list[str], env: dict[str, str], port: int, *, ours: bool) -> Iterator[str]:
    """A uvicorn process on ``port``, up before yielding: ours when ``/ready`` says 200
    (the embedded store builds every tenant's snapshot before it listens), the obvious
    endpoint when the lead route answers at all."""
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), *args, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={k: v for k, v in {**os.environ, **env}.items() if v},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if ours:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                    time.sleep(0.3)
                    continue
                httpx.get(url + "/v1/leads/x/score", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"server {args} did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def lua_script(path: Path, keys: list[str], per_tenant: int) -> Path:
    quoted = ", ".join(f'"{k}"' for k in keys)
    path.write_text(
        f"""
local keys = {{{quoted}}}
math.randomseed(42)
request = function()
  local t = math.random(1, #keys)
  local i = math.random(0, {per_tenant - 1})
  local headers = {{}}
  headers["X-API-Key"] = keys[t]
  return wrk.format("GET", string.format("/v1/leads/lead-%04d/score", i), headers)
end
"""
    )
    return path


def wait_for_copies(url: str, polls: int = 12, limit_s: float = 600) -> float:
    """Seconds until ``polls`` answers of ``/metrics`` in a row (reaching every worker)
    report no copy loading: on Postgres, the warm-up's requests start each worker's
    loads of every tenant, and the measurement is of a server that holds them."""
    started = time.monotonic()
    quiet = 0
    while quiet < polls and time.monotonic() - started < limit_s:
        text = httpx.get(url + "/metrics", timeout=5).text
        found = re.search(r"^bizos_api_snapshot_loads_running (\S+)$", text, re.M)
        quiet = quiet + 1 if found is not None and float(found.group(1)) == 0 else 0
        time.sleep(0.25)
    return time.monotonic() - started


def run_wrk(
    url: str, script: Path, connections: int, duration: int, *, ours: bool
) -> dict[str, float]:
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    subprocess.run(command, capture_output=True, check=True)  # warm-up: snapshots, pools
    if ours:
        print(f"  copies loaded {wait_for_copies(url):.0f} s after the warm-up", flush=True)
    out = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    if ours:  # what the workers held and loaded by the end of the measurement
        polls = [httpx.get(url + "/metrics", timeout=5).text for _ in range(6)]
        held = sorted(
            {" ".join(re.findall(r"^bizos_api_snapshot\w* (\S+)$", text, re.M)) for text in polls}
        )
        print(f"  after: snapshots, loads running, rows per worker: {held}", flush=True)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "non2xx": float(m.group(1)) if (m := re.search(r"Non-2xx.*?(\d+)", out)) else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_pgbench(
    url: str, tenants: int, per_tenant: int, connections: int, duration: int
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bizos-pgbench-"))
    script = work / "lead.sql"
    script.write_text(
        f"\\set t random(0, {tenants - 1})\n\\set i random(0, {per_tenant - 1})\n"
        "SELECT * FROM serving.lead_scores"
        " WHERE tenant_id = 'tenant' || :t AND lead_id = 'lead-' || lpad(:i::text, 4, '0');\n"
    )
    command = ["pgbench", "-n", "-M", "prepared", f"-c{connections}", "-j2", f"-T{duration}"]
    command += ["-f", str(script), "--log", "--log-prefix", str(work / "log"), url]
    out = subprocess.run(command, capture_output=True, check=True, text=True, cwd=work).stdout
    latencies = sorted(
        int(line.split()[2]) for log in work.glob("log*") for line in log.read_text().splitlines()
    )
    shutil.rmtree(work, ignore_errors=True)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": tps,
        "p50": latencies[len(latencies) // 2] / 1000,
        "p99": latencies[int(len(latencies) * 0.99)] / 1000,
        "non2xx": 0.0,
    }


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--snapshot-rows",
        type=int,
        default=None,
        help="BIZOS_API_SNAPSHOT_MAX_ROWS of our API (default: every lead, all in memory; "
        "the platform's default is 1,000,000)",
    )
    parser.add_argument("--only", nargs="*", default=None, help="postgres embedded obvious pgbench")
    args = parser.parse_args()
    per_tenant = args.leads // args.tenants
    dbname = f"bizos_bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    home = Path(tempfile.mkdtemp(prefix="bizos-bench-api-"))
    url = with_database(SERVER, dbname)
    try:
        pg: Settings = get_settings(home=home / "pg", database_url=url)
        embedded: Settings = get_settings(home=home / "embedded", database_url=None)
        started = time.monotonic()
        keys_pg, keys_embedded = [], []
        for t in range(args.tenants):
            tenant = f"tenant{t}"
            rows = tenant_rows(tenant, per_tenant, t)
            publish_lead_scores(pg, tenant, rows)
            publish_lead_scores(embedded, tenant, rows)
            keys_pg.append(create_key(pg, tenant))
            keys_embedded.append(create_key(embedded, tenant))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        api_url = create_api_role(pg, "bizos_api_bench")
        print(
            f"published {args.leads:,} leads in {args.tenants} tenants to both stores"
            f" in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        script_pg = lua_script(home / "pg.lua", keys_pg, per_tenant)
        script_embedded = lua_script(home / "embedded.lua", keys_embedded, per_tenant)
        common = {
            "BIZOS_API_RATE_LIMIT": "1000000000",
            "BIZOS_API_SNAPSHOT_MAX_ROWS": str(
                args.leads + 1 if args.snapshot_rows is None else args.snapshot_rows
            ),
        }
        factory = [
            "serving.main:create_app",
            "--factory",
            "--workers",
            str(args.workers),
            "--no-access-log",
        ]
        contenders = {
            "our API, Postgres": (
                factory,
                {
                    **common,
                    "BIZOS_HOME": str(pg.home),
                    "BIZOS_DATABASE_URL": url,
                    "BIZOS_API_DATABASE_URL": api_url,
                },
                script_pg,
            ),
            "our API, embedded": (
                factory,
                {**common, "BIZOS_HOME": str(embedded.home), "BIZOS_DATABASE_URL": ""},
                script_embedded,
            ),
            "obvious FastAPI + psycopg async endpoint": (
                ["bench.obvious_endpoint:app", "--workers", str(args.workers), "--no-access-log"],
                {"BENCH_DATABASE_URL": url},
                script_pg,
            ),
        }
        names = {
            "postgres": "our API, Postgres",
            "embedded": "our API, embedded",
            "obvious": "obvious FastAPI + psycopg async endpoint",
        }
        wanted = {names.get(o, o) for o in args.only} if args.only else None
        before = load()
        results: dict[str, dict[str, float]] = {}
        for name, (server_args, env, script) in contenders.items():
            if wanted is not None and name not in wanted:
                continue
            port = free_port()
            ours = name.startswith("our API")
            up = time.monotonic()
            with server(server_args, env, port, ours=ours) as base:
                print(f"{name}: ready in {time.monotonic() - up:.0f} s", flush=True)
                results[name] = run_wrk(base, script, args.connections, args.duration, ours=ours)
            print(name, results[name], flush=True)
        if wanted is None or "pgbench" in wanted:
            results["pgbench, same query, prepared"] = run_pgbench(
                url, args.tenants, per_tenant, args.connections, args.duration
            )
        after = load()
        print(
            f"\nload average (1, 5, 15 min): before {before}, after {after}; {os.cpu_count()} CPUs"
        )
        print(
            f"wrk -t2 -c{args.connections} -d{args.duration}s, {args.workers} uvicorn workers, "
            f"{common['BIZOS_API_SNAPSHOT_MAX_ROWS']} snapshot rows per worker\n"
        )
        print("| endpoint | req/s | p50 (ms) | p99 (ms) | non-2xx |")
        print("|---|---:|---:|---:|---:|")
        for name, r in results.items():
            cells = f"{r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']:.0f}"
            print(f"| {name} | {cells} |")
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
