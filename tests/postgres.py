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
import time
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


def can_start_replica() -> bool:
    return can_start_cluster() and _pg_bin("pg_basebackup") is not None


def _run_as(data: Path) -> list[str]:
    """Postgres refuses to run as root: as root, the ``postgres`` user runs it."""
    if os.geteuid() != 0:
        return []
    shutil.chown(data, user="postgres")
    return ["runuser", "-u", "postgres", "--"]


def _start(pg_ctl: str, run_as: list[str], data: Path, name: str, port: int) -> None:
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data / name),
            "-w",
            "-l",
            str(data / f"{name}.log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )


def _stop(pg_ctl: str, run_as: list[str], data: Path, name: str) -> None:
    subprocess.run(
        [*run_as, pg_ctl, "-D", str(data / name), "-m", "fast", "stop"], capture_output=True
    )


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """initdb + pg_ctl start in a temp dir; stopped and removed on exit."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError(HOW_TO)
    data = Path(tempfile.mkdtemp(prefix="bizos-pg-"))
    port = _free_port()
    run_as = _run_as(data)
    subprocess.run(
        [*run_as, initdb, "-D", str(data / "db"), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    _start(pg_ctl, run_as, data, "db", port)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _stop(pg_ctl, run_as, data, "db")
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def replica_pair() -> Iterator[tuple[str, str]]:
    """A throwaway primary and a hot standby streaming from it (``pg_basebackup -R``):
    their maintenance URLs. Roles and databases made on the primary reach the standby;
    ``pg_wal_replay_pause()`` on the standby holds it behind."""
    initdb, pg_ctl, basebackup = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("pg_basebackup")
    if not (initdb and pg_ctl and basebackup):
        raise RuntimeError("a replica pair needs initdb, pg_ctl and pg_basebackup")
    data = Path(tempfile.mkdtemp(prefix="bizos-pg-replica-"))
    primary_port, standby_port = _free_port(), _free_port()
    run_as = _run_as(data)
    subprocess.run(
        [*run_as, initdb, "-D", str(data / "primary"), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    _start(pg_ctl, run_as, data, "primary", primary_port)
    try:
        subprocess.run(
            [
                *run_as,
                basebackup,
                "-h",
                "127.0.0.1",
                "-p",
                str(primary_port),
                "-U",
                "postgres",
                "-D",
                str(data / "standby"),
                "-R",
                "-X",
                "stream",
            ],
            check=True,
            capture_output=True,
        )
        _start(pg_ctl, run_as, data, "standby", standby_port)
        try:
            yield (
                f"postgresql://postgres@127.0.0.1:{primary_port}/postgres",
                f"postgresql://postgres@127.0.0.1:{standby_port}/postgres",
            )
        finally:
            _stop(pg_ctl, run_as, data, "standby")
    finally:
        _stop(pg_ctl, run_as, data, "primary")
        shutil.rmtree(data, ignore_errors=True)


def replayed(primary_url: str, standby_url: str, timeout: float = 30.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while True:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [row[0]]
            ).fetchone()
            if done is not None and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {row[0]} in {timeout} s")
            time.sleep(0.01)


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
