"""The ops schema goes through Alembic: created from empty, upgraded once, never
downgraded by accident, and refused when a newer release has migrated it.

Each test runs on the embedded SQLite file and on a fresh real Postgres database.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import migrations
from cli.main import app
from connectors.state import read_cursor
from core.settings import Settings, Target
from credentials import list_credentials
from opsdb.tables import metadata
from serving.keys import create_key, resolve_key

ROOT = Path(__file__).resolve().parent.parent

OPS_HEAD = "ops_0007"
"""The newest ops revision; a new one bumps this (and shows in review)."""


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue(
        "settings" if request.param == "embedded" else "pg_settings"
    )
    return settings


def inspect_engine(settings: Settings) -> sa.Engine:
    return sa.create_engine(migrations.engine_url(settings), poolclass=sa.NullPool)


def schema_of(settings: Settings) -> str | None:
    return "ops" if settings.target is Target.POSTGRES else None


def stamp(settings: Settings, revision: str) -> None:
    """Write the version table by hand, the way a newer release would have left it."""
    version_table = "ops.alembic_version_ops" if schema_of(settings) else "alembic_version_ops"
    engine = inspect_engine(settings)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {version_table} SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_upgrade_from_empty_builds_the_declared_tables(target: Settings) -> None:
    assert migrations.status(target, "ops").state == "empty"
    assert migrations.upgrade(target, "ops") == migrations.head("ops") == OPS_HEAD
    engine = inspect_engine(target)
    inspector = sa.inspect(engine)
    schema = schema_of(target)
    # What the stores query (opsdb.tables) is what the migration built, column by column.
    assert set(inspector.get_table_names(schema=schema)) == {
        *(t.name for t in metadata.sorted_tables),
        "alembic_version_ops",
    }
    for table in metadata.sorted_tables:
        columns = {c["name"]: c for c in inspector.get_columns(table.name, schema=schema)}
        assert list(columns) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        pk = inspector.get_pk_constraint(table.name, schema=schema)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
        indexes = {i["name"] for i in inspector.get_indexes(table.name, schema=schema)}
        assert indexes == {i.name for i in table.indexes}, table.name
    engine.dispose()
    if target.target is Target.DUCKDB:
        assert oct(migrations.ops_sqlite_path(target).stat().st_mode & 0o777) == "0o600"


def test_a_second_upgrade_changes_nothing_and_keeps_rows(target: Settings) -> None:
    key = create_key(target, "acme")  # the store upgrades on first use
    assert migrations.status(target, "ops").state == "current"
    assert migrations.upgrade(target, "ops") == OPS_HEAD
    assert migrations.upgrade(target, "ops") == OPS_HEAD
    assert resolve_key(target, key) == "acme"
    engine = inspect_engine(target)
    with engine.connect() as conn:
        table = "ops.alembic_version_ops" if schema_of(target) else "alembic_version_ops"
        assert conn.execute(sa.text(f"SELECT version_num FROM {table}")).all() == [(OPS_HEAD,)]
    engine.dispose()


def test_a_database_ahead_of_the_code_is_refused(target: Settings) -> None:
    migrations.upgrade(target, "ops")
    stamp(target, "ops_9999")
    with pytest.raises(migrations.SchemaAhead, match=f"revision ops_9999.*newest is {OPS_HEAD}"):
        migrations.upgrade(target, "ops")
    # A store refuses too, before it reads or writes a row (a fresh process would).
    migrations._checked.clear()
    with pytest.raises(migrations.SchemaAhead, match="ops_9999"):
        list_credentials(target)
    assert migrations.status(target, "ops").state == "ahead"


def test_two_processes_upgrading_at_once_both_succeed(target: Settings) -> None:
    script = (
        "import sys, migrations\n"
        "from core.settings import get_settings\n"
        "s = get_settings(home=sys.argv[1], database_url=sys.argv[2] or None)\n"
        "print(migrations.upgrade(s, 'ops'))\n"
    )
    url = target.postgres_url if target.target is Target.POSTGRES else ""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(target.home), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in results]
    assert [out.strip() for out, _ in results] == [OPS_HEAD] * 3
    assert migrations.status(target, "ops").current == OPS_HEAD


def test_db_status_and_upgrade_commands(target: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIZOS_HOME", str(target.home))
    if target.target is Target.POSTGRES:
        monkeypatch.setenv("BIZOS_DATABASE_URL", target.postgres_url)
    else:
        monkeypatch.delenv("BIZOS_DATABASE_URL", raising=False)
    runner = CliRunner()
    before = runner.invoke(app, ["db", "status"])
    assert before.exit_code == 0, before.output
    assert "ops" in before.output and "not created yet" in before.output
    assert not migrations.ops_sqlite_path(target).exists()  # status reads only

    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"ops: empty -> {OPS_HEAD}" in upgraded.output
    after = runner.invoke(app, ["db", "status"])
    ops_line = next(line for line in after.output.splitlines() if "│ ops " in line)
    assert ops_line.count(OPS_HEAD) == 2 and "up to date" in ops_line
    serving_line = next(line for line in after.output.splitlines() if "│ serving " in line)
    if target.target is Target.DUCKDB:
        assert "Postgres only" in serving_line

    stamp(target, "ops_9999")
    ahead = runner.invoke(app, ["db", "status"])
    assert ahead.exit_code == 1 and "AHEAD" in ahead.output
    refused = runner.invoke(app, ["db", "upgrade"])
    assert refused.exit_code == 1 and "ops_9999" in refused.output


@pytest.mark.postgres
def test_a_pre_migration_postgres_install_is_adopted(pg_settings: Settings, pg_url: str) -> None:
    """Tables made by the stores' old CREATE IF NOT EXISTS keep their rows; keys move to ops."""
    created = datetime(2026, 1, 2, tzinfo=UTC)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "CREATE SCHEMA ops;"
            "CREATE TABLE ops.connector_cursors (tenant_id text NOT NULL, source text NOT NULL,"
            " table_name text NOT NULL, cursor jsonb NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (tenant_id, source, table_name));"
            "INSERT INTO ops.connector_cursors VALUES ('acme', 'stripe', 'charges', '{\"a\": 1}');"
            "CREATE SCHEMA serving_admin;"
            "CREATE TABLE serving_admin.api_keys (key_hash text PRIMARY KEY, tenant_id text NOT"
            " NULL, key_prefix text NOT NULL, created_at timestamptz NOT NULL,"
            " revoked_at timestamptz)"
        )
        key = "bz_" + "a" * 43
        conn.execute(
            "INSERT INTO serving_admin.api_keys VALUES (%s, 'acme', %s, %s, NULL)",
            [hashlib.sha256(key.encode()).hexdigest(), key[:8], created],
        )
    assert read_cursor(pg_settings, tenant_id="acme", source="stripe", table="charges") == {"a": 1}
    assert resolve_key(pg_settings, key) == "acme"
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT to_regclass('serving_admin.api_keys')").fetchone()
    assert left == (None,)
