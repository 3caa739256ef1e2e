"""Many tenants at once, and a killed run: real `bizos run` processes, real dbt.

Several `bizos run --tenant X` started together share one BIZOS_HOME (one
warehouse, one Dagster instance), as the daily schedule's runs do. A run killed
mid-dbt must leave no dbt process, no run stuck STARTED and no temporary file
that the next run trips over.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from core.settings import PROJECT_ROOT, Settings
from pipelines.housekeeping import PID_STARTED_TAG, process_tags, run_is_dead, sweep_temp_files
from sandbox.crm_export import generate_crm_export
from serving.queries import top_lead_scores
from warehouse.dbt_runs import dbt_runs_dir, prune_dbt_runs, warehouse_lock
from warehouse.marts import read_mart

BIZOS = Path(sys.executable).with_name("bizos")
TENANTS = ("t-north", "t-south", "t-east")
LEADS = 30  # every 29th generated lead has an unusable email: 29 scored per tenant
# Whole runs in subprocesses: generous on a loaded 2-core machine.
slow = pytest.mark.timeout(1500)


def run_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIZOS_", "DAGSTER_"))}
    env["BIZOS_HOME"] = str(settings.home)
    if settings.database_url is not None:
        env["BIZOS_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


def start_run(settings: Settings, tenant: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIZOS), "run", "--tenant", tenant],
        cwd=PROJECT_ROOT,
        env=run_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 1000) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def with_exports(settings: Settings, tenants: tuple[str, ...]) -> None:
    for i, tenant in enumerate(tenants):
        generate_crm_export(settings.inbox_dir, tenant, leads=LEADS, seed=20 + i)


def tenant_log(settings: Settings, tenant: str) -> str:
    path = settings.home / "logs" / f"{tenant}.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def run_together(settings: Settings) -> None:
    with_exports(settings, TENANTS)
    procs = {tenant: start_run(settings, tenant) for tenant in TENANTS}
    results = {tenant: finish(proc) for tenant, proc in procs.items()}
    failed = {t: out + tenant_log(settings, t) for t, (rc, out) in results.items() if rc != 0}
    assert not failed, failed
    for tenant in TENANTS:
        mart = read_mart(settings, "mart_lead_scores", tenant_id=tenant)
        assert mart.num_rows == LEADS - 1, tenant
        assert set(mart.column("tenant_id").to_pylist()) == {tenant}
        served = top_lead_scores(settings, tenant, 100)
        assert len(served) == LEADS - 1 and {r["tenant_id"] for r in served} == {tenant}


@slow
def test_three_tenant_runs_started_together_all_succeed_on_duckdb(settings):
    run_together(settings)
    # dbt's target and logs live under BIZOS_HOME, a folder per dbt step of each run
    # (named <time>-<run id>-<pid>): three runs, and nothing written into the checkout.
    folders = list((settings.home / "dbt" / "runs").iterdir())
    assert len({f.name.split("-")[1] for f in folders}) == len(TENANTS)
    assert not (PROJECT_ROOT / "dbt" / "target").exists()


@slow
@pytest.mark.postgres
def test_three_tenant_runs_started_together_all_succeed_on_postgres(pg_settings):
    run_together(pg_settings)


# -- a killed run ----------------------------------------------------------------


REAL_DBT = str(Path(sys.executable).with_name("dbt"))


def dbt_build_under(pid: int) -> psutil.Process | None:
    """The `dbt build` process among ``pid``'s descendants, if one is running: dbt
    itself, not the launcher (BIZOS_HOME/dbt/bin/dbt) before it has become dbt."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            cmd = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "build" in cmd and REAL_DBT in cmd:
            return child
    return None


def instance_runs(settings: Settings) -> dict[str, str]:
    """run id -> status of every run in the installation's Dagster instance."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(settings.home / "dagster")) as instance:
        return {run.run_id: run.status.value for run in instance.get_runs()}


@slow
def test_a_run_killed_mid_dbt_leaves_nothing_that_breaks_the_next(settings):
    with_exports(settings, ("t-kill",))
    proc = start_run(settings, "t-kill")
    deadline = time.monotonic() + 300
    dbt = None
    while dbt is None and proc.poll() is None and time.monotonic() < deadline:
        dbt = dbt_build_under(proc.pid)
        time.sleep(0.2)
    assert dbt is not None, finish(proc)[1] + tenant_log(settings, "t-kill")
    # dbt runs in a process group of its own, so a signal to the run's group (a
    # terminal's Ctrl-C, a supervisor) does not reach it: only its parent's death.
    assert os.getpgid(dbt.pid) == dbt.pid
    # What a publish and a lake write leave when killed half-way.
    settings.serving_dir.mkdir(parents=True, exist_ok=True)
    next_file = settings.serving_dir / "serving.duckdb.next-0123abcd"
    next_file.write_bytes(b"half a database")
    lake_tmp = settings.lake_dir / "crm_export" / "leads" / "tenant=t-kill" / ".part.parquet.ab.tmp"
    lake_tmp.parent.mkdir(parents=True, exist_ok=True)
    lake_tmp.write_bytes(b"half a parquet")

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs([dbt], timeout=15)
    assert not alive, f"dbt (pid {dbt.pid}) outlived its killed run"
    [killed_run] = [r for r, status in instance_runs(settings).items() if status == "STARTED"]

    rc, out = finish(start_run(settings, "t-kill"))
    assert rc == 0, out + tenant_log(settings, "t-kill")
    statuses = instance_runs(settings)
    assert statuses[killed_run] == "FAILURE"
    assert sorted(statuses.values()) == ["FAILURE", "SUCCESS"]
    assert not next_file.exists() and not lake_tmp.exists()
    assert read_mart(settings, "mart_lead_scores", tenant_id="t-kill").num_rows == LEADS - 1


def test_dbt_launcher_child_dies_when_its_parent_is_terminated(tmp_path):
    from warehouse.dbt_runs import PARENT_PID_ENV, dbt_launcher_script

    launcher = tmp_path / "dbt"
    launcher.write_text(dbt_launcher_script(python=sys.executable, dbt="/bin/sleep"))
    launcher.chmod(0o755)
    parent_code = (
        "import os, subprocess, sys\n"
        f"env = {{**os.environ, {PARENT_PID_ENV!r}: str(os.getpid())}}\n"
        f"child = subprocess.Popen([{str(launcher)!r}, '300'], env=env)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 30
    while child.cmdline()[:1] != ["/bin/sleep"] and time.monotonic() < deadline:
        time.sleep(0.05)  # until the launcher has become /bin/sleep
    assert child.cmdline() == ["/bin/sleep", "300"] and os.getpgid(child.pid) == child.pid
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=10)
    child.wait(timeout=10)  # raises TimeoutExpired if the child outlives its parent


# -- the parts, without a whole run --------------------------------------------------


def hold_lock_while(settings: Settings, holder_run: str, waiter: Callable[[], None]) -> None:
    """Hold the warehouse lock in a thread while ``waiter`` runs."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with warehouse_lock(settings, run_id=holder_run, log=lambda _: None):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        waiter()
    finally:
        release.set()
        thread.join(30)


def waiting_lines(settings: Settings, holder_run: str) -> list[str]:
    lines: list[str] = []

    def wait_then_give_up() -> None:
        got = threading.Event()

        def take() -> None:
            with warehouse_lock(settings, run_id="waiter", log=lines.append, progress_seconds=0.3):
                got.set()

        takers.append(threading.Thread(target=take, daemon=True))
        takers[0].start()
        time.sleep(1.5)
        assert not got.is_set(), "two writers held the warehouse at once"

    takers: list[threading.Thread] = []
    hold_lock_while(settings, holder_run, wait_then_give_up)
    takers[0].join(30)  # gets the lock once the holder lets go
    assert not takers[0].is_alive()
    return lines


def test_a_run_waiting_for_the_embedded_warehouse_logs_who_holds_it(settings):
    lines = waiting_lines(settings, "run-holding-embedded")
    assert lines and all("waiting" in line for line in lines[:1])
    assert "run-holding-embedded" in lines[0] and f"pid {os.getpid()}" in lines[0]


@pytest.mark.postgres
def test_a_run_waiting_for_the_postgres_warehouse_logs_who_holds_it(pg_settings):
    lines = waiting_lines(pg_settings, "run-holding-postgres")
    assert lines and "waiting" in lines[0]
    assert "bizos-warehouse run-hold" in lines[0] and f"pid {os.getpid()}" in lines[0]


def test_only_the_newest_dbt_run_folders_are_kept(settings):
    root = dbt_runs_dir(settings)
    names = [f"2026112{i}T000000-run{i}-1" for i in range(6)]
    for name in names:
        (root / name / "target").mkdir(parents=True)
    removed = prune_dbt_runs(settings, keep=4)
    assert sorted(p.name for p in removed) == names[:2]
    assert sorted(p.name for p in root.iterdir()) == names[2:]


def test_sweep_removes_only_temporary_files_older_than_the_oldest_live_run(settings):
    old_tmp = settings.lake_dir / "stripe" / "charges" / "tenant=a" / ".x.parquet.1.tmp"
    new_tmp = old_tmp.with_name(".y.parquet.2.tmp")
    kept = old_tmp.with_name("x.parquet")
    old_next = settings.serving_dir / "serving.duckdb.next-aa"
    live = settings.serving_dir / "serving.duckdb"
    for path in (old_tmp, new_tmp, kept, old_next, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    cutoff = time.time()
    for path in (old_tmp, kept, old_next, live):
        os.utime(path, (cutoff - 60, cutoff - 60))
    os.utime(new_tmp, (cutoff + 1, cutoff + 1))  # written by a run still going
    swept = sweep_temp_files(settings, older_than=cutoff)
    assert sorted(swept) == sorted([old_tmp, old_next])
    assert new_tmp.exists() and kept.exists() and live.exists()


def test_a_run_is_dead_only_when_its_process_on_this_host_is_gone():
    host = socket.gethostname()
    mine = process_tags()
    assert not run_is_dead(mine, host)
    assert run_is_dead({**mine, PID_STARTED_TAG: "12.00"}, host)  # pid reused since
    assert not run_is_dead({**mine, PID_STARTED_TAG: "12.00"}, "another-host")
    assert not run_is_dead({}, host)  # launched by the daemon: its run monitoring decides


def test_runs_starting_together_on_a_fresh_home_share_one_dagster_instance(tmp_path):
    """Three `bizos run` on a fresh home once raced to create Dagster's storage
    ("Version table 'alembic_version' has more than one head present")."""
    code = (
        "import sys\n"
        "from core.settings import get_settings\n"
        "from pipelines.runner import dagster_instance\n"
        "instance = dagster_instance(get_settings(home=sys.argv[1]))\n"
        "print(len(instance.get_runs()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "home")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [out for out, _ in outcomes]
    assert [out.strip() for out, _ in outcomes] == ["0"] * 4
