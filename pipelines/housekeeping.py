"""What a killed run leaves behind, cleared at the next start.

A run killed with SIGKILL (or by the OOM killer, or a reboot) cannot clean up:
its Dagster run stays STARTED, and files it was writing stay on disk. Every run
started from the CLI records its pid, process start time and host in its tags,
so the next start can tell a live run from a dead one on this host, mark the
dead ones failed (freeing their concurrency slots) and sweep temporary files no
live run can still be writing.

Temporary files swept (the patterns are documented in docs/operations.md):

- ``lake/**/.*.tmp``: a Parquet partition being written (lake/files.py renames it
  into place when complete);
- ``serving/serving.duckdb.next-*``: the embedded serving store's next file being
  built before its rename (serving/duckdb_store.py), with its ``.wal``.

Only files last modified before the oldest live run started are removed, so a
run starting beside others never deletes their work in progress.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from core.settings import Settings
from lake.files import lake_root
from lake.s3 import S3Path

log = logging.getLogger(__name__)

PID_TAG = "bizos/pid"
PID_STARTED_TAG = "bizos/pid_started"
HOST_TAG = "bizos/host"

LIVE_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """Tags that identify the process executing a run (see :func:`fail_dead_runs`)."""
    me = psutil.Process()
    return {
        PID_TAG: str(me.pid),
        PID_STARTED_TAG: f"{me.create_time():.2f}",
        HOST_TAG: socket.gethostname(),
    }


def process_alive(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a reuse)."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def run_is_dead(tags: dict[str, str], host: str) -> bool:
    """A run is known dead when it was executed on this host by a process that is gone.

    Runs without our tags (launched by the Dagster daemon) are left to Dagster's own
    run monitoring, which dagster.yaml turns on.
    """
    if tags.get(HOST_TAG) != host or PID_TAG not in tags or PID_STARTED_TAG not in tags:
        return False
    try:
        pid, started = int(tags[PID_TAG]), float(tags[PID_STARTED_TAG])
    except ValueError:
        return False
    return not process_alive(pid, started)


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every live-looking run whose process on this host is gone."""
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=LIVE_STATUSES)):
        if not run_is_dead(dict(run.tags), host):
            continue
        instance.report_run_failed(
            run,
            message=f"the process of this run (pid {run.tags[PID_TAG]} on {host}) is gone: "
            "it was killed; marked failed at the next start",
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


def oldest_live_run_start(instance: DagsterInstance) -> float | None:
    """Start time (epoch seconds) of the oldest run still going, if any."""
    starts = [
        record.start_time
        for record in instance.get_run_records(filters=RunsFilter(statuses=LIVE_STATUSES))
        if record.start_time is not None
    ]
    return min(starts) if starts else None


def temp_files(settings: Settings) -> Iterator[Path]:
    """Files matching the documented temporary-file patterns."""
    root = lake_root(settings)
    if isinstance(root, Path) and root.is_dir():
        yield from root.rglob(".*.tmp")
    if isinstance(root, S3Path) and root.store.staging_dir.is_dir():
        # An s3:// lake's partitions are written locally, then uploaded.
        yield from root.store.staging_dir.glob(".*.tmp")
    if settings.serving_dir.is_dir():
        yield from settings.serving_dir.glob("serving.duckdb.next-*")


def sweep_temp_files(settings: Settings, *, older_than: float) -> list[Path]:
    """Remove temporary files last modified before ``older_than`` (epoch seconds)."""
    swept = []
    for path in temp_files(settings):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < older_than:
                path.unlink()
                swept.append(path)
        except FileNotFoundError:
            continue
    return swept


def clean_up_after_dead_runs(
    settings: Settings, instance: DagsterInstance
) -> tuple[list[str], list[Path]]:
    """At a run's start: fail the dead runs, then sweep what no live run can own.

    The calling process's own runs have not started yet, so "older than the oldest
    live run" (or now, when none is live) never touches a file being written.
    """
    failed = fail_dead_runs(instance)
    oldest = oldest_live_run_start(instance)
    swept = sweep_temp_files(settings, older_than=oldest if oldest is not None else time.time())
    if failed:
        log.warning("marked %d dead run(s) failed: %s", len(failed), ", ".join(failed))
    for path in swept:
        log.warning("removed leftover temporary file %s", os.fspath(path))
    return failed, swept
