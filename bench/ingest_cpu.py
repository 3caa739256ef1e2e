"""Benchmark: CPU seconds per record to load a source into Parquet: ours, pandas, dlt.

The first ingest benchmark (``ingest_stripe_charges.py``) paged the sandbox,
which serves about 6,500 records a second here: both contenders ran at its pace
and the 1.00x said nothing. Here the pages come from ``bench/page_server.py``,
which holds every record's JSON as bytes and answers a page with a join, in its
own process; the measure is each contender's own CPU time (user + sys), which
the server's pace and the machine's other load do not change.

Contenders, each in its own process, one after the other, loading the same
records of one table (Stripe charges, newest first by ``starting_after``; CRM
leads, by page number or ``updated_since``):

- ours: ``run_source`` (retries, cursor saved per batch, load log, records
  checked against the table spec, bad ones quarantined, batched landing into
  month partitions merged by primary key with de-duplication).
- pandas: httpx paging into a list, ``pandas.json_normalize``, nested values as
  JSON text, ``DataFrame.to_parquet`` (what one writes by hand).
- dlt: a ``dlt.resource`` over dlt's ``RESTClient`` with its own paginator
  (``JSONResponseCursorPaginator`` on ``data[-1].id`` for Stripe,
  ``PageNumberPaginator`` on ``meta.total_pages`` for the CRM), run into the
  ``filesystem`` destination as Parquet, ``write_disposition="append"`` (dlt's
  merge needs a table format on that destination; ours de-duplicates, dlt here
  does not). dlt flattens nested objects into ``a__b`` columns.

Each contender reports the CPU time of its work (``getrusage`` of itself and its
children, after its imports) and its peak RSS (``VmHWM``); the parent records
the process's whole CPU time (``wait4``) and wall time.

Usage: .venv/bin/python bench/ingest_cpu.py [--records 200000] [--sources stripe,crm_api]
       [--contenders ours,pandas,dlt] [--record]
dlt comes from the ``bench`` dependency group (``uv sync --group bench``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_line, record_section  # noqa: E402

TENANT = "bench-tenant"
PORT = 8197
TABLES = {"stripe": "charges", "crm_api": "leads"}
COUNT_KEYS = {"stripe": "stripe.charges", "crm_api": "crm_api.leads"}
CONTENDERS = ("pandas", "dlt", "ours", "before")


# -- contenders (run in a child process) ----------------------------------------------


def run_ours(source: str, url: str, secret: str, home: Path) -> int:
    from connectors.ingest import run_source
    from core.settings import get_settings

    settings = get_settings(home=home, database_url=None)
    [result] = run_source(
        settings,
        tenant_id=TENANT,
        source=source,
        secret=secret,
        base_url=f"{url}/{source}",
        tables=[TABLES[source]],
    )
    return result.rows_loaded


def _pages_pandas(source: str, url: str, secret: str) -> list[dict[str, Any]]:
    import httpx

    records: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=f"{url}/{source}", headers=headers, timeout=30) as client:
        if source == "stripe":
            params: dict[str, str | int] = {"limit": 100}
            while True:
                page = client.get("/v1/charges", params=params).raise_for_status().json()
                records.extend(page["data"])
                if not page["has_more"]:
                    return records
                params["starting_after"] = page["data"][-1]["id"]
        number = 1
        while True:
            page = (
                client.get("/api/v1/leads", params={"page": number, "per_page": 100})
                .raise_for_status()
                .json()
            )
            records.extend(page["data"])
            if number >= page["meta"]["total_pages"]:
                return records
            number += 1


def run_pandas(source: str, url: str, secret: str, home: Path) -> int:
    import pandas as pd

    frame = pd.json_normalize(_pages_pandas(source, url, secret))
    # Lists (and dicts json_normalize leaves, e.g. empty ones) cannot go to Parquet as is.
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, list | dict)).any():
            frame[column] = frame[column].map(json.dumps)
    home.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(home / f"{TABLES[source]}.parquet", index=False)
    return len(frame)


def run_dlt(source: str, url: str, secret: str, home: Path) -> int:
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import (
        JSONResponseCursorPaginator,
        PageNumberPaginator,
    )

    table = TABLES[source]
    if source == "stripe":
        client = RESTClient(
            base_url=f"{url}/stripe",
            auth=BearerTokenAuth(secret),
            data_selector="data",
            paginator=JSONResponseCursorPaginator(
                cursor_path="data[-1].id", cursor_param="starting_after", has_more_path="has_more"
            ),
        )
        path, params = "/v1/charges", {"limit": 100}
    else:
        client = RESTClient(
            base_url=f"{url}/crm_api",
            auth=BearerTokenAuth(secret),
            data_selector="data",
            paginator=PageNumberPaginator(base_page=1, total_path="meta.total_pages"),
        )
        path, params = "/api/v1/leads", {"per_page": 100}

    @dlt.resource(name=table, write_disposition="append", primary_key="id")
    def records() -> Any:
        yield from client.paginate(path, params=params)

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{source}",
        pipelines_dir=str(home / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(home / "lake").as_uri()),
        dataset_name=source,
    )
    info = pipeline.run(records(), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts  # type: ignore[union-attr]
    return int(counts.get(table, 0))


RUNNERS = {"ours": run_ours, "before": run_ours, "pandas": run_pandas, "dlt": run_dlt}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def contender(name: str, source: str, url: str, home: Path) -> None:
    """Child process: warm the imports, run one contender, print its JSON result."""
    if name == "before":
        # ``run_ours`` from another checkout (``--before-root``): imports resolve there.
        sys.path.insert(0, os.environ["BENCH_BEFORE_ROOT"])
    if name in ("ours", "before"):
        import connectors.ingest  # noqa: F401
    elif name == "pandas":
        import httpx  # noqa: F401
        import pandas  # noqa: F401
    else:
        import dlt  # noqa: F401
        import dlt.destinations  # noqa: F401
        import dlt.sources.helpers.rest_client  # noqa: F401
    cpu, started = _cpu(), time.perf_counter()
    rows = RUNNERS[name](source, url, os.environ["BENCH_SECRET"], home)
    result = {"rows": rows, "work_cpu_s": _cpu() - cpu, "work_s": time.perf_counter() - started}
    print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``). Not ``ru_maxrss`` from
    ``wait4``: Linux carries the parent's peak at ``fork`` over ``exec`` into the
    child's, so every contender would show at least the parent's size (which
    holds the generated data)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


# -- the parent ------------------------------------------------------------------------


def measure(
    name: str, source: str, url: str, secret: str, home: Path, before_root: Path | None = None
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_BEFORE_ROOT": str(before_root or ""),
        "BENCH_SECRET": secret,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DLT_DATA_DIR": str(home / "dlt-data"),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--contender",
            name,
            "--source",
            source,
            "--url",
            url,
            "--home",
            str(home),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{name} on {source} failed (status {status})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result.update(
        name=name,
        source=source,
        process_cpu_s=usage.ru_utime + usage.ru_stime,
        wall_s=wall,
    )
    if result.get("peak_rss_mb") is None:
        result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    tables = ",".join(f"{s}.{t}" for s, t in TABLES.items())
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "page_server.py"),
            str(data),
            TENANT,
            str(port),
            tables,
        ],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if line.strip() != b"ready":
        server.kill()
        raise SystemExit("the page server did not start")
    return server


def generate(records: int, data: Path) -> None:
    from sandbox.generator import generate_sources

    if (data / "credentials.json").exists():
        return
    print(f"generating {records:,} records per table into {data} …", flush=True)
    t0 = time.perf_counter()
    generate_sources(
        data,
        tenants=[TENANT],
        scale=0.01,
        seed=7,
        counts=dict.fromkeys(COUNT_KEYS.values(), records),
    )
    print(f"  generated in {time.perf_counter() - t0:.0f}s", flush=True)


def run(
    records: int,
    *,
    sources: list[str],
    contenders: list[str],
    data: Path | None = None,
    before_root: Path | None = None,
    record: bool = False,
    command: str = "",
) -> list[dict[str, Any]]:
    if "dlt" in contenders and importlib.util.find_spec("dlt") is None:
        print("dlt is not installed (`.tools/bin/uv sync --group bench`): left out", flush=True)
        contenders = [c for c in contenders if c != "dlt"]
    work = Path(tempfile.mkdtemp(prefix="bizos-bench-ingest-"))
    data = data or work / "data"
    generate(records, data)
    credentials = json.loads((data / "credentials.json").read_text())[TENANT]
    results = []
    server = start_server(data, PORT)
    try:
        for source in sources:
            for name in contenders:
                print(f"running {name} on {source} …", flush=True)
                result = measure(
                    name,
                    source,
                    f"http://127.0.0.1:{PORT}",
                    credentials[source]["secret"],
                    work / f"{name}-{source}",
                    before_root,
                )
                print(f"  {result}", flush=True)
                results.append(result)
    finally:
        server.terminate()
        server.wait()
    text = report(results, records)
    print(text)
    if record:
        record_section(
            "Ingest: CPU per record, ours vs pandas vs dlt (`bench/ingest_cpu.py`)",
            f"{records:,} records per table",
            command or f".venv/bin/python bench/ingest_cpu.py --records {records} --record",
            text,
        )
    return results


def report(results: list[dict[str, Any]], records: int) -> str:
    lines = [
        machine_line(),
        "",
        "| source | contender | records | CPU µs/record (work) | process CPU (s) | wall (s) "
        "| peak RSS (MB) | pandas CPU / this | dlt CPU / this | before CPU / this |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        same = {o["name"]: o for o in results if o["source"] == r["source"]}
        per = r["work_cpu_s"] / max(r["rows"], 1)

        def ratio(other: str, same: dict[str, Any] = same, per: float = per) -> str:
            o = same.get(other)
            if o is None:
                return "-"
            return f"{(o['work_cpu_s'] / max(o['rows'], 1)) / per:.2f}x"

        lines.append(
            f"| {r['source']}.{TABLES[r['source']]} | {r['name']} | {r['rows']:,} "
            f"| {per * 1e6:,.1f} | {r['process_cpu_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['peak_rss_mb']:,.0f} | {ratio('pandas')} | {ratio('dlt')} | {ratio('before')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per table")
    parser.add_argument("--sources", default="stripe,crm_api")
    parser.add_argument("--contenders", default="pandas,dlt,ours")
    parser.add_argument(
        "--before-root",
        type=Path,
        help="a checkout of earlier code, run as contender 'before' (e.g. from `git archive`)",
    )
    parser.add_argument("--data", type=Path, help="reuse generated data here")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender(args.contender, args.source, args.url, args.home)
        return
    run(
        args.records,
        sources=args.sources.split(","),
        contenders=args.contenders.split(","),
        data=args.data,
        before_root=args.before_root,
        record=args.record,
        command=".venv/bin/python bench/ingest_cpu.py " + shlex.join(sys.argv[1:]),
    )


if __name__ == "__main__":
    main()
