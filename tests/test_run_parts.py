"""The parts that let many runs share one installation, tested without whole
runs: dbt dies with its run, the warehouse writer lock says who holds it,
housekeeping keeps the right folders and files, a fresh home's Dagster storage
is created once, and the Dagster definitions load as `dagster` loads them."""

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

from core.settings import PROJECT_ROOT, Settings, get_settings
from pipelines.housekeeping import PID_STARTED_TAG, process_tags, run_is_dead, sweep_temp_files
from warehouse.dbt_runs import dbt_runs_dir, prune_dbt_runs, warehouse_lock


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
    # The stand-in for `bizos run` gets SIGTERM's default action, as a process started
    # from a shell does: an ignored SIGTERM (SIG_IGN survives exec) left in this test
    # process by another test of the session would otherwise make it unkillable.
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 30
    while child.cmdline()[:1] != ["/bin/sleep"] and time.monotonic() < deadline:
        time.sleep(0.05)  # until the launcher has become /bin/sleep
    assert child.cmdline() == ["/bin/sleep", "300"] and os.getpgid(child.pid) == child.pid
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    child.wait(timeout=30)  # raises TimeoutExpired if the child outlives its parent


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


def test_dagster_definitions_validate(tmp_path: Path):
    # The session's home, whose dbt manifest this process parsed when it imported
    # the definitions: a fresh one would make `dagster` parse the project again.
    from assets.warehouse import ensure_manifest

    ensure_manifest()
    home = get_settings().home
    env = {**os.environ, "BIZOS_HOME": str(home), "DAGSTER_HOME": str(tmp_path)}
    env.pop("BIZOS_DATABASE_URL", None)
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
