"""The embedded Dagster storage with its event log's connections kept
(pipelines/dagster_storage.py): the same files as Dagster's own, read both ways."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, AssetMaterialization, DagsterEventType, DagsterInstance, asset
from dagster import materialize as dagster_materialize
from dagster._core.events import DagsterEvent, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from core.settings import Settings
from pipelines.dagster_storage import (
    KEPT_SHARDS,
    TEMPLATE_DIR,
    PooledSqliteEventLogStorage,
)
from pipelines.runner import dagster_instance


def materialization(run_id: str, name: str, partition: str = "acme") -> EventLogEntry:
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="job",
        event_specific_data=StepMaterializationData(
            AssetMaterialization(AssetKey(["raw", name]), partition=partition)
        ),
    )
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        step_key="step",
        job_name="job",
        dagster_event=event,
    )


def run_id(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
        stamp = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    return [*tables, ("alembic", str(stamp)), ("journal_mode", str(mode))]


def test_a_new_runs_shard_is_what_dagster_itself_makes(tmp_path: Path) -> None:
    stock, pooled = tmp_path / "stock", tmp_path / "pooled"
    SqliteEventLogStorage(str(stock)).store_event(materialization(run_id(1), "a"))
    ours = PooledSqliteEventLogStorage(str(pooled))
    ours.store_event(materialization(run_id(1), "a"))
    ours.dispose()
    name = f"{run_id(1)}.db"
    assert schema(pooled / name) == schema(stock / name)
    assert schema(pooled / "index.db") == schema(stock / "index.db")
    # The template is never taken for a run.
    assert (pooled / TEMPLATE_DIR).is_dir()
    assert PooledSqliteEventLogStorage(str(pooled)).get_all_run_ids() == [run_id(1)]


def test_history_reads_the_same_both_ways(tmp_path: Path) -> None:
    """Written by Dagster's storage, read by ours, and the other way round: switching
    ``storage`` in dagster.yaml loses nothing."""
    folder = str(tmp_path)
    SqliteEventLogStorage(folder).store_event(materialization(run_id(1), "a"))
    ours = PooledSqliteEventLogStorage(folder)
    assert [e.asset_materialization.asset_key for e in ours.get_logs_for_run(run_id(1))] == [
        AssetKey(["raw", "a"])
    ]
    ours.store_event(materialization(run_id(2), "b"))
    ours.store_event(materialization(run_id(1), "c"))
    ours.dispose()
    stock = SqliteEventLogStorage(folder)
    assert len(stock.get_logs_for_run(run_id(1))) == 2
    latest = stock.get_latest_materialization_events([AssetKey(["raw", "b"])])
    assert latest[AssetKey(["raw", "b"])] is not None


def test_many_runs_and_writers_at_once(tmp_path: Path) -> None:
    """More runs than the shards kept open, from two storages (two processes' worth)
    writing the same index at once: every event is there, each in its own run."""
    folder = str(tmp_path)
    storages = [PooledSqliteEventLogStorage(folder), PooledSqliteEventLogStorage(folder)]
    runs = KEPT_SHARDS * 2
    errors: list[BaseException] = []

    def write(which: int) -> None:
        try:
            for n in range(which, runs, 2):
                for i in range(5):
                    storages[which].store_event(materialization(run_id(n), f"t{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    reader = SqliteEventLogStorage(folder)
    assert sorted(reader.get_all_run_ids()) == [run_id(n) for n in range(runs)]
    assert all(len(reader.get_logs_for_run(run_id(n))) == 5 for n in range(runs))
    records = reader.fetch_materializations(AssetKey(["raw", "t0"]), limit=100).records
    assert len(records) == runs


def test_after_a_wipe_events_go_to_new_files(tmp_path: Path) -> None:
    folder = str(tmp_path)
    ours = PooledSqliteEventLogStorage(folder)
    ours.store_event(materialization(run_id(1), "a"))
    ours.wipe()
    assert not (tmp_path / f"{run_id(1)}.db").exists()
    ours.store_event(materialization(run_id(1), "b"))
    again = SqliteEventLogStorage(folder).get_logs_for_run(run_id(1))
    assert [e.asset_materialization.asset_key for e in again] == [AssetKey(["raw", "b"])]


def test_the_embedded_instance_uses_it(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(settings.home / "dagster"))

    @asset
    def probe() -> int:
        return 1

    instance: DagsterInstance = dagster_instance(settings)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    result = dagster_materialize([probe], instance=instance)
    assert result.success
    instance.dispose()
    # A new instance (another process) reads what the first wrote.
    other = dagster_instance(settings)
    assert other.get_run_by_id(result.run_id) is not None
    assert other.get_latest_materialization_event(AssetKey("probe")) is not None
    other.dispose()


def sessions(url: str) -> int:
    """Sessions the server has started on this database so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_on_postgres_the_event_log_keeps_its_connection(
    pg_settings: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's Postgres storage opened a connection (a server process and a login)
    for each event and run update; ours keeps one per storage. A run of three assets
    writes dozens of events."""
    monkeypatch.setenv("DAGSTER_HOME", str(pg_settings.home / "dagster"))

    @asset
    def one() -> int:
        return 1

    @asset
    def two(one: int) -> int:
        return one + 1

    @asset
    def three(two: int) -> int:
        return two + 1

    instance = dagster_instance(pg_settings)
    config = (pg_settings.home / "dagster" / "dagster.yaml").read_text()
    assert "class: PooledPostgresStorage" in config and "password" not in config.lower()
    dagster_materialize([one, two, three], instance=instance)  # tables, first connections
    before = sessions(pg_url)
    result = dagster_materialize([one, two, three], instance=instance)
    events = len(instance.all_logs(result.run_id))
    opened = sessions(pg_url) - before
    instance.dispose()
    assert result.success and events > 30
    # One kept per storage (events, runs, schedules), not one per event (72 here).
    assert opened <= 6, (opened, events)
    other = dagster_instance(pg_settings)
    assert len(other.all_logs(result.run_id)) == events
    other.dispose()
