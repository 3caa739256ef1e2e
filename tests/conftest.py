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


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with the fix, when no Postgres can be had: most tests need one."""
    try:
        found = server_url_from_env() is not None or can_start_cluster()
    except RuntimeError as exc:
        pytest.exit(str(exc), returncode=3)
    if not found:
        pytest.exit(HOW_TO, returncode=3)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a Postgres server (maintenance db) the tests may create databases on."""
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
