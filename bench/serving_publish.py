"""Publish cost of one tenant against the size of the other tenants' data.

Publishes tenant ``acme`` (1,000 rows) into a serving store that holds 1,000 and
then 100,000 rows of other tenants, on both stores, and prints the median time of
five publishes each. A publish that costs in proportion to its own tenant shows a
ratio near 1. Needs a Postgres server for the Postgres half (``BIZOS_BENCH_PG``,
default ``postgresql://postgres@127.0.0.1:5432/postgres``).

    .venv/bin/python bench/serving_publish.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import Settings, get_settings  # noqa: E402
from serving.publish import publish_lead_scores  # noqa: E402
from tests.test_serving_contract import lead_scores_table  # noqa: E402

TENANT_ROWS = 1_000
OTHERS = (1_000, 100_000)
OTHER_TENANTS = 10
REPEATS = 5


def fill_others(settings: Settings, total: int) -> None:
    per = total // OTHER_TENANTS
    for i in range(OTHER_TENANTS):
        publish_lead_scores(settings, f"other{i}", lead_scores_table(f"other{i}", per))


def median_publish(settings: Settings) -> float:
    table = lead_scores_table("acme", TENANT_ROWS)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        publish_lead_scores(settings, "acme", table)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(label: str, make: object) -> None:
    results = {}
    for others in OTHERS:
        with make() as settings:  # type: ignore[operator]
            fill_others(settings, others)
            results[others] = median_publish(settings)
    small, large = (results[o] for o in OTHERS)
    print(
        f"{label:9} acme {TENANT_ROWS} rows: {small * 1000:7.1f} ms with {OTHERS[0]:,} other rows,"
        f" {large * 1000:7.1f} ms with {OTHERS[1]:,}; ratio {large / small:.2f}"
    )


class Embedded:
    def __enter__(self) -> Settings:
        self._dir = tempfile.TemporaryDirectory()
        return get_settings(home=Path(self._dir.name), database_url=None)

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()


class Postgres:
    server = os.environ.get("BIZOS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

    def __enter__(self) -> Settings:
        self._name = f"bizos_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self._name}"')
        self._dir = tempfile.TemporaryDirectory()
        url = self.server.rsplit("/", 1)[0] + f"/{self._name}"
        return get_settings(home=Path(self._dir.name), database_url=url)

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
        self._dir.cleanup()


if __name__ == "__main__":
    run("embedded", Embedded)
    run("postgres", Postgres)
