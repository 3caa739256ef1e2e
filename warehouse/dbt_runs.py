"""How one dbt invocation lives beside others: its own folders, one writer at a time,
and no life after the run that started it.

- Each invocation writes target/ and logs/ into its own folder under
  ``BIZOS_HOME/dbt/runs``; the oldest folders beyond ``dbt_runs_kept`` are pruned.
- One writer builds the warehouse at a time: DuckDB allows one writing process per
  file, and on Postgres two builds would create the same views and tables at once
  ("relation already exists"). The embedded target takes a file lock under
  ``BIZOS_HOME/locks``, the Postgres target a session advisory lock, so runs on
  different machines queue too. Both are released by the kernel or the server
  when the holder dies, so a killed run never leaves the warehouse locked.
- dbt is started through :func:`exec_dbt`, which asks Linux to kill it when its
  parent dies (``PR_SET_PDEATHSIG``) and puts it in its own process group, so a
  SIGKILLed or SIGTERMed run takes dbt down with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from filelock import FileLock, Timeout

from core.settings import Settings, Target

TENANT_ENV = "BIZOS_DBT_TENANT_ID"
"""The tenant a build is for, read by dbt/macros/run_tenant.sql (not --vars: see there)."""

PARENT_PID_ENV = "BIZOS_DBT_PARENT_PID"
"""Set by the run for its dbt child: the pid whose death must end dbt."""

WAREHOUSE_LOCK_KEY = 0x62_69_7A_6F
"""Postgres advisory lock key of the warehouse writer ("bizo" in ASCII); below
2**31, so pg_locks shows it as objid with classid 0."""

PR_SET_PDEATHSIG = 1


def dbt_runs_dir(settings: Settings) -> Path:
    return settings.home / "dbt" / "runs"


def dbt_run_dir(settings: Settings, run_id: str) -> Path:
    """This run's dbt folder; the time prefix makes a listing sort oldest first."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return dbt_runs_dir(settings) / f"{stamp}-{run_id[:8]}-{os.getpid()}"


def prune_dbt_runs(settings: Settings, *, keep: int) -> list[Path]:
    """Remove the oldest per-run dbt folders beyond the newest ``keep``."""
    root = dbt_runs_dir(settings)
    if not root.is_dir():
        return []
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    doomed = folders[: max(len(folders) - keep, 0)]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


# -- the warehouse writer lock ---------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    """Who holds the warehouse, for the log lines of those who wait."""

    run_id: str
    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"{self.run_id} (pid {self.pid} on {self.host}) since {self.since}"

    @classmethod
    def me(cls, run_id: str) -> LockHolder:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return cls(run_id=run_id, pid=os.getpid(), host=socket.gethostname(), since=now)


@contextmanager
def warehouse_lock(
    settings: Settings,
    *,
    run_id: str,
    log: Callable[[str], None],
    progress_seconds: float | None = None,
) -> Iterator[LockHolder]:
    """Hold the warehouse writer lock; while waiting, log who holds it every few seconds."""
    every = settings.lock_progress_seconds if progress_seconds is None else progress_seconds
    if settings.target is Target.POSTGRES:
        with _postgres_lock(settings, run_id=run_id, log=log, every=every) as holder:
            yield holder
    else:
        with _file_lock(settings, run_id=run_id, log=log, every=every) as holder:
            yield holder


def _waited(started: float) -> str:
    return f"{time.monotonic() - started:.0f}s"


@contextmanager
def _file_lock(
    settings: Settings, *, run_id: str, log: Callable[[str], None], every: float
) -> Iterator[LockHolder]:
    locks = settings.home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / "warehouse.lock"))
    holder_file = locks / "warehouse.holder.json"
    started = time.monotonic()
    while True:
        try:
            lock.acquire(timeout=every)
            break
        except Timeout:
            log(f"waiting {_waited(started)} for the warehouse lock: {_read_holder(holder_file)}")
    me = LockHolder.me(run_id)
    try:
        holder_file.write_text(json.dumps(me.__dict__), encoding="utf-8")
        if time.monotonic() - started > 1:
            log(f"got the warehouse lock after {_waited(started)}")
        yield me
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def _read_holder(path: Path) -> str:
    try:
        return LockHolder(**json.loads(path.read_text(encoding="utf-8"))).describe()
    except (OSError, ValueError, TypeError):
        return "held by another run (no holder recorded yet)"


@contextmanager
def _postgres_lock(
    settings: Settings, *, run_id: str, log: Callable[[str], None], every: float
) -> Iterator[LockHolder]:
    me = LockHolder.me(run_id)
    # The holder is named in application_name, which pg_stat_activity shows to
    # whoever waits (and to a DBA); 63 bytes at most.
    app_name = f"bizos-warehouse {run_id[:8]} pid {me.pid}@{me.host}"[:63]
    with psycopg.connect(settings.postgres_url, autocommit=True, application_name=app_name) as conn:
        started = last_report = time.monotonic()
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", [WAREHOUSE_LOCK_KEY]).fetchone()[
            0
        ]:  # type: ignore[index]
            if time.monotonic() - last_report >= every:
                log(f"waiting {_waited(started)} for the warehouse lock: {_pg_holder(conn)}")
                last_report = time.monotonic()
            time.sleep(min(1.0, every))
        if time.monotonic() - started > 1:
            log(f"got the warehouse lock after {_waited(started)}")
        try:
            yield me
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [WAREHOUSE_LOCK_KEY])


def _pg_holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT a.application_name, a.client_addr::text, a.state_change"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s"
        # advisory locks are per database: another database's holder is not ours
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [WAREHOUSE_LOCK_KEY],
    ).fetchone()
    if row is None:
        return "held by another session (just released?)"
    name, addr, since = row
    return f"held by {name or 'an unnamed session'} from {addr or 'local socket'} since {since}"


# -- dbt as a child that dies with its run ----------------------------------------


def dbt_launcher_script(*, python: str, dbt: str) -> str:
    """A tiny executable that dagster-dbt starts in place of dbt: it calls
    :func:`exec_dbt`, which becomes dbt. (dagster-dbt's Popen takes no preexec_fn.)"""
    return (
        f"#!{python}\n"
        "# Written by warehouse/dbt_runs.py: dbt that dies with the run that started it.\n"
        "import sys\n"
        "from warehouse.dbt_runs import exec_dbt\n"
        f"exec_dbt({dbt!r}, sys.argv[1:])\n"
    )


def write_dbt_launcher(settings: Settings) -> Path:
    """The launcher under BIZOS_HOME, rewritten only when its text changes."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    path = settings.home / "dbt" / "bin" / "dbt"
    text = dbt_launcher_script(python=sys.executable, dbt=dbt)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".dbt.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, path)
    return path


def die_with_parent(parent_pid: int | None) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), and leave
    at once if the parent is already gone (the race before prctl)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(137)


def exec_dbt(dbt: str, args: list[str]) -> None:
    """Become dbt in a process group of its own that dies with its parent."""
    parent = os.environ.get(PARENT_PID_ENV)
    die_with_parent(int(parent) if parent else None)
    os.setpgid(0, 0)
    os.execv(dbt, [dbt, *args])
