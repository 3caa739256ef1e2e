"""Benchmark: the nightly `daily_refresh` for many tenants at once.

The schedule itself is evaluated (``daily_refresh`` on a real Dagster instance with
one dynamic partition per tenant); each of its run requests then becomes one
`bizos run --tenant T` process, at most ``--concurrency`` at a time, as the Dagster
run queue (``max_concurrent_runs``) and the default run launcher (one process per
run) would start them. Every run shares one BIZOS_HOME: one lake, one warehouse,
one serving store, one Dagster instance. The warehouse writer lock serializes
the dbt builds; everything else overlaps.

    .venv/bin/python bench/daily_refresh.py --tenants 50 --concurrency 4 [--record]

``--record`` appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster import DagsterInstance, build_schedule_context  # noqa: E402

from core.settings import get_settings  # noqa: E402
from sandbox.crm_export import generate_crm_export  # noqa: E402

BIZOS = Path(sys.executable).with_name("bizos")
WAIT_LINE = re.compile(r"got the warehouse lock after (\d+)s")


def scheduled_tenants(home: Path, tenants: list[str]) -> list[str]:
    """The tenants the real `daily_refresh` schedule requests runs for."""
    from assets.resources import BizosSettings
    from pipelines.definitions import daily_refresh
    from pipelines.runner import dagster_instance

    instance: DagsterInstance = dagster_instance(get_settings(home=home))
    instance.add_dynamic_partitions("tenants", tenants)
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.now(UTC).replace(hour=2, minute=0),
        # the schedule skips disabled tenants (opsdb.tenants): it reads the settings
        resources={"bizos": BizosSettings(home=str(home), database_url="")},
    )
    requests = daily_refresh(context)
    assert isinstance(requests, list)
    return [str(r.partition_key) for r in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--leads", type=int, default=200, help="CRM export leads per tenant")
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once")
    parser.add_argument("--home", type=Path, help="BIZOS_HOME (default: a temporary folder)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="bizos-daily-"))
    settings = get_settings(home=home, database_url=os.environ.get("BIZOS_DATABASE_URL"))
    tenants = [f"bench-{i:03d}" for i in range(args.tenants)]
    for i, tenant in enumerate(tenants):
        generate_crm_export(settings.inbox_dir, tenant, leads=args.leads, seed=i)
    env = {**os.environ, "BIZOS_HOME": str(home)}
    env["BIZOS_MAX_CONCURRENT_RUNS"] = str(args.concurrency)

    os.environ.update(env)
    queue = deque(scheduled_tenants(home, tenants))
    assert sorted(queue) == tenants, "the schedule did not request every tenant"
    print(f"{len(queue)} runs requested by daily_refresh; {args.concurrency} at a time; {home}")

    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    seconds: dict[str, float] = {}
    failed: list[str] = []
    while queue or running:
        while queue and len(running) < args.concurrency:
            tenant = queue.popleft()
            proc = subprocess.Popen(
                [str(BIZOS), "run", "--tenant", tenant],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            running[tenant] = (proc, time.monotonic())
        time.sleep(0.5)
        for tenant, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                seconds[tenant] = time.monotonic() - t0
                if proc.returncode != 0:
                    failed.append(tenant)
                del running[tenant]
                print(f"{tenant}: rc {proc.returncode} in {seconds[tenant]:.0f}s", flush=True)
    wall = time.monotonic() - started

    waits = []
    for tenant in tenants:
        log = home / "logs" / f"{tenant}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        waits += [int(m) for m in WAIT_LINE.findall(text)]
    per_run = sorted(seconds.values())
    row = {
        "tenants": args.tenants,
        "leads/tenant": args.leads,
        "runs at once": args.concurrency,
        "target": settings.target.value,
        "succeeded": args.tenants - len(failed),
        "wall (s)": f"{wall:.0f}",
        "per run, median (s)": f"{per_run[len(per_run) // 2]:.0f}",
        "per run, max (s)": f"{per_run[-1]:.0f}",
        "lock waits logged": len(waits),
        "longest lock wait (s)": max(waits, default=0),
        "dbt run folders kept": len(list((home / "dbt" / "runs").iterdir())),
    }
    for key, value in row.items():
        print(f"{key}: {value}")
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(
                f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, daily_refresh, "
                f"{args.tenants} tenants, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}\n\n"
                f"Command: `.venv/bin/python bench/daily_refresh.py --tenants {args.tenants} "
                f"--leads {args.leads} --concurrency {args.concurrency} --record`\n\n"
                f"| {' | '.join(row)} |\n|{'---:|' * len(row)}\n"
                f"| {' | '.join(str(v) for v in row.values())} |\n"
            )
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
