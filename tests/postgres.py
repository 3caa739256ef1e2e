"""Find a Postgres server for the tests, and make throwaway databases on it.

Order: ``BIZOS_TEST_DATABASE_URL``; else a server on 127.0.0.1:5432 (user
postgres); else a throwaway cluster started with initdb/pg_ctl when they are
installed; else a clear message saying how to point the tests at one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO = (
    "No Postgres server found for the tests. Set BIZOS_TEST_DATABASE_URL to a server "
    "where the user may create databases and roles, e.g.\n"
    "  BIZOS_TEST_DATABASE_URL=postgresql://postgres:secret@localhost:5432/postgres make test\n"
    "or install PostgreSQL (initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin) "
    "so the tests can start a throwaway cluster."
)


def can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def can_start_cluster() -> bool:
    return bool(_pg_bin("initdb") and _pg_bin("pg_ctl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """initdb + pg_ctl start in a temp dir; stopped and removed on exit."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError(HOW_TO)
    data = Path(tempfile.mkdtemp(prefix="bizos-pg-"))
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, initdb, "-D", str(data / "db"), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data / "db"),
            "-w",
            "-l",
            str(data / "log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data / "db"), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)


def server_url_from_env() -> str | None:
    """The configured or local server, if one answers; None otherwise."""
    explicit = os.environ.get("BIZOS_TEST_DATABASE_URL")
    if explicit:
        if not can_connect(explicit):
            raise RuntimeError(f"BIZOS_TEST_DATABASE_URL is set but does not answer.\n{HOW_TO}")
        return explicit
    return LOCAL_URL if can_connect(LOCAL_URL) else None


def with_database(server_url: str, dbname: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def fresh_database(server_url: str, prefix: str = "bizos_test") -> Iterator[str]:
    """A new empty database on the server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
