"""Shared fixtures: an isolated BIZOS_HOME per test and real Postgres databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, get_settings
from tests.postgres import (
    HOW_TO,
    can_start_cluster,
    fresh_database,
    server_url_from_env,
    throwaway_cluster,
)
from tests.s3 import S3Server, moto_server

PG_FIXTURES = frozenset({"pg_server", "pg_url", "pg_settings"})
_NO_POSTGRES: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Find out once whether a Postgres can be had; tests that need one skip without it."""
    try:
        found = server_url_from_env() is not None or can_start_cluster()
    except RuntimeError as exc:  # BIZOS_TEST_DATABASE_URL set but not answering
        _NO_POSTGRES.append(str(exc))
        return
    if not found:
        _NO_POSTGRES.append(HOW_TO)


# The modules that run whole pipelines, longest first. xdist (--dist loadfile) hands
# modules to workers in collection order: these go first, so the suite does not end
# with one worker on a long module while the other has nothing left to do.
LONGEST_FIRST = (
    "test_runs_postgres.py",
    "test_runs_embedded.py",
    "test_spark_target.py",
    "test_dashboards.py",
    "test_dashboards_marts.py",
    "test_lead_marts.py",
    "test_quality_gates.py",
    "test_dbt_project.py",
    "test_sourcing_marts.py",
    "test_supplier_marts.py",
    "test_supplier_documents.py",
    "test_backfill_window.py",
    "test_operations.py",
)


def _schedule_rank(item: pytest.Item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a Postgres fixture ``postgres`` (so ``-m "not postgres"``
    runs the rest), and skip them, saying how to fix it, when no server can be had.
    Then put the longest modules first (``LONGEST_FIRST``); the sort is stable, so
    each module keeps its own order."""
    items.sort(key=_schedule_rank)
    skip = pytest.mark.skip(reason=_NO_POSTGRES[0]) if _NO_POSTGRES else None
    for item in items:
        needs_pg = PG_FIXTURES & set(getattr(item, "fixturenames", ()))
        if needs_pg or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.postgres)
            if skip is not None:
                item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _NO_POSTGRES:
        terminalreporter.write_line(
            "Tests marked `postgres` were skipped: " + _NO_POSTGRES[0], yellow=True
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a Postgres server (maintenance db) the tests may create databases on."""
    if _NO_POSTGRES:
        pytest.skip(_NO_POSTGRES[0])
    url = server_url_from_env()
    if url:
        yield url
        return
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def bizos_home(tmp_path: Path) -> Path:
    home = tmp_path / "bizos"
    home.mkdir()
    return home


@pytest.fixture
def settings(bizos_home: Path) -> Settings:
    """Embedded (DuckDB) settings over a private BIZOS_HOME."""
    return get_settings(home=bizos_home, database_url=None)


@pytest.fixture
def pg_settings(bizos_home: Path, pg_url: str) -> Settings:
    """Postgres-target settings over a private BIZOS_HOME and a fresh database."""
    return get_settings(home=bizos_home, database_url=pg_url)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, once per test process (tests/s3.py); a bucket per lake."""
    with moto_server() as server:
        yield server
