"""CPU per request of the lead route, in process: the API's own Python, without HTTP.

``bench/serving_api.py`` measures whole servers with wrk, which on a shared 2-core
machine mostly measures how busy the machine is. This drives the ASGI app directly
(embedded store, ``--leads`` leads in ``--tenants`` tenants, ``--requests`` requests
for random leads of random tenants, each with its tenant's key) and reports the
process's CPU time per request, which the machine's load affects far less.
``--code DIR`` imports the serving code from another checkout (e.g. main) to compare;
``--profile`` prints cProfile's top functions.

    .venv/bin/python bench/serving_cpu.py [--code /work/main] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout to import from")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT))
    os.environ["BIZOS_API_RATE_LIMIT"] = "1000000000"

    from bench.serving_api import tenant_rows
    from core.settings import get_settings
    from serving.keys import create_key
    from serving.main import create_app
    from serving.publish import publish_lead_scores

    per_tenant = args.leads // args.tenants
    home = Path(tempfile.mkdtemp(prefix="bizos-bench-cpu-"))
    settings = get_settings(home=home, database_url=None)
    keys = []
    for t in range(args.tenants):
        publish_lead_scores(settings, f"tenant{t}", tenant_rows(f"tenant{t}", per_tenant, t))
        keys.append(create_key(settings, f"tenant{t}"))
    app = create_app(settings)

    async def call(path: str, key: str) -> list[dict[str, Any]]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"bench"), (b"x-api-key", key.encode())],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for key in keys:  # every tenant's snapshot, as a warm server has them
                await call("/v1/leads/lead-0000/score", key)
            rnd = random.Random(1)
            wanted = [
                (f"/v1/leads/lead-{rnd.randrange(per_tenant):04d}/score", rnd.choice(keys))
                for _ in range(args.requests)
            ]
            profiler = cProfile.Profile()
            statuses: dict[int, int] = {}
            wall, cpu = time.perf_counter(), time.process_time()
            if args.profile:
                profiler.enable()
            for path, key in wanted:
                status = (await call(path, key))[0]["status"]
                statuses[status] = statuses.get(status, 0) + 1
            profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            n = len(wanted)
            print(
                f"{args.code}: {n:,} requests, statuses {statuses}:"
                f" {cpu / n * 1e6:.1f} us CPU and {wall / n * 1e6:.1f} us wall per request;"
                f" load average {os.getloadavg()[0]:.1f}"
            )
            if args.profile:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    asyncio.run(run())


if __name__ == "__main__":
    main()
