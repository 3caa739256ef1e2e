"""`bizos tenants`: a tenant is added with its partition and inbox, a disabled
tenant's keys are refused by the API on the very next request, and removing a
tenant deletes its data in every store (and nobody else's), after --yes only.

Each test runs on the embedded target and on a fresh real Postgres database.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

import cli.tenants
import credentials
from cli.main import app
from connectors.state import connector_state, read_cursor
from core.settings import Settings, Target
from lake.files import partition_dir, write_partition
from opsdb.tenants import disable_tenant, disabled_tenants, list_tenant_records, register_tenant
from pipelines.tenant_lifecycle import TenantLifecycleError, add_tenant, remove_tenant
from serving.keys import create_key, find_grant
from serving.main import create_app
from serving.publish import publish_lead_scores
from serving.queries import top_lead_scores
from tests.test_serving_api import with_api_role
from tests.test_serving_contract import lead_scores_table


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue(
        "settings" if request.param == "embedded" else "pg_settings"
    )
    key = credentials.generate_master_key().encoded()
    return settings.model_copy(update={"master_key": SecretStr(key)})


def test_a_disabled_tenants_keys_are_refused_on_the_next_request(target: Settings) -> None:
    api = with_api_role(target) if target.target is Target.POSTGRES else target
    publish_lead_scores(target, "acme", lead_scores_table("acme", 3))
    publish_lead_scores(target, "globex", lead_scores_table("globex", 2))
    acme, globex = create_key(target, "acme"), create_key(target, "globex")
    with TestClient(create_app(api)) as client:

        def status(key: str) -> int:
            return client.get("/v1/leads/scores", headers={"X-API-Key": key}).status_code

        # Neither tenant has a registry row (an install from before ops_0006): active.
        assert list_tenant_records(target) == []
        assert (status(acme), status(globex)) == (200, 200)
        assert disable_tenant(target, "acme")
        assert (status(acme), status(globex)) == (401, 200)  # same client, no restart
        assert find_grant(target, acme) is None
        assert disabled_tenants(target) == {"acme"}
        _, changed = register_tenant(target, "acme")  # `tenants add` enables it again
        assert changed and status(acme) == 200


def test_add_list_and_disable_from_the_cli(
    target: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIZOS_HOME", str(target.home))
    monkeypatch.setenv("DAGSTER_HOME", str(target.home / "dagster"))  # restored after
    if target.database_url is not None:
        monkeypatch.setenv("BIZOS_DATABASE_URL", target.database_url.get_secret_value())
    else:
        monkeypatch.setenv("BIZOS_DATABASE_URL", "")
    monkeypatch.setattr(cli.tenants.console, "file", shown := io.StringIO())
    runner = CliRunner()

    def bizos(*args: str) -> tuple[int, str]:
        start = shown.tell()
        result = runner.invoke(app, ["tenants", *args])
        shown.seek(start)
        # table borders (box drawing) read as spaces
        out = " ".join(re.sub("[\u2500-\u257f]", " ", result.output + shown.read()).split())
        shown.seek(0, io.SEEK_END)
        return result.exit_code, out

    assert bizos("add", "acme") == (0, bizos_add_text(target, "acme", "added"))
    code, out = bizos("add", "acme")
    assert code == 0 and "already active" in out
    assert (target.inbox_dir / "acme").is_dir()
    code, out = bizos("add", "Not A Tenant")
    assert code == 2 and "Not A Tenant" in out and "Traceback" not in out

    assert bizos("disable", "acme")[0] == 0
    code, out = bizos("list")
    assert code == 0 and "acme disabled yes yes 0" in out, out
    code, out = bizos("remove", "acme")
    assert code == 2 and "confirm with --yes" in out
    assert [r.tenant_id for r in list_tenant_records(target)] == ["acme"]  # still there


def bizos_add_text(settings: Settings, tenant: str, what: str) -> str:
    return " ".join(
        (
            f"tenant {tenant}: {what}\n  inbox {settings.tenant_inbox(tenant)}\n"
            f"  next: bizos credentials set --tenant {tenant} --source <source> < secret-file\n"
            f"        bizos keys create --tenant {tenant}"
        ).split()
    )


def land(settings: Settings, tenant: str) -> None:
    rows = pa.table({"tenant_id": [tenant], "id": ["ch_1"]})
    for root in (settings.lake_dir, settings.quarantine_dir):
        folder = partition_dir(root, "stripe", "charges", tenant=tenant, month="2026-11")
        folder.mkdir(parents=True, exist_ok=True)
        write_partition(rows, folder / "part.parquet")


def warehouse_rows(settings: Settings, *, seed: bool = False) -> list[tuple[str, int]]:
    """A mart-like table in the warehouse: made with a row per tenant when ``seed``."""
    create = (
        "CREATE SCHEMA IF NOT EXISTS analytics; "
        "CREATE TABLE analytics.ops_test_mart (tenant_id text, n integer)"
    )
    insert = "INSERT INTO analytics.ops_test_mart VALUES ('acme', 1), ('globex', 2)"
    select = "SELECT tenant_id, n FROM analytics.ops_test_mart ORDER BY tenant_id"
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
            if seed:
                conn.execute(create)
                conn.execute(insert)
            return [(str(t), int(n)) for t, n in conn.execute(select).fetchall()]
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        if seed:
            conn.execute(create)
            conn.execute(insert)
        return [(str(t), int(n)) for t, n in conn.execute(select).fetchall()]


def test_remove_deletes_the_tenants_data_everywhere_and_nobody_elses(
    target: Settings, tmp_path: Path
) -> None:
    instance = DagsterInstance.ephemeral()
    config_root = tmp_path / "config"
    for tenant in ("acme", "globex"):
        add_tenant(target, instance, tenant)
        land(target, tenant)
        publish_lead_scores(target, tenant, lead_scores_table(tenant, 4))
        create_key(target, tenant)
        credentials.set_secret(
            target, tenant_id=tenant, source="stripe", secret="sk_test_x" * 3, actor="test"
        )
        connector_state(target).put_cursor(
            tenant_id=tenant, source="stripe", table="charges", cursor={"high_water": 1}
        )
        (config_root / "scoring").mkdir(parents=True, exist_ok=True)
        (config_root / "scoring" / f"{tenant}.yaml").write_text("version: 1\n")
    warehouse_rows(target, seed=True)

    with pytest.raises(TenantLifecycleError, match="confirm with --yes"):
        remove_tenant(target, instance, "acme", confirmed=False, config_root=config_root)
    assert top_lead_scores(target, "acme", 10)  # nothing was touched

    removal = remove_tenant(target, instance, "acme", confirmed=True, config_root=config_root)
    assert removal.removed == {
        "dagster partition": 1,
        "inbox folders": 1,
        "lake folders": 2,  # the lake's and the quarantine's
        "serving rows": 4,
        "warehouse rows": 1,
        "credentials": 1,
        "api keys": 1,
        "cursors": 1,
        "config files": 1,
    }
    assert instance.get_dynamic_partitions("tenants") == ["globex"]
    assert not (target.inbox_dir / "acme").exists()
    assert not list(target.lake_dir.rglob("tenant=acme"))
    assert len(list(target.lake_dir.rglob("tenant=globex"))) == 2
    assert top_lead_scores(target, "acme", 10) == []
    assert len(top_lead_scores(target, "globex", 10)) == 4
    assert warehouse_rows(target) == [("globex", 2)]
    assert [c.tenant_id for c in credentials.list_credentials(target)] == ["globex"]
    assert read_cursor(target, tenant_id="acme", source="stripe", table="charges") is None
    assert read_cursor(target, tenant_id="globex", source="stripe", table="charges")
    assert sorted(p.name for p in (config_root / "scoring").iterdir()) == ["globex.yaml"]
    assert [r.tenant_id for r in list_tenant_records(target)] == ["globex"]

    # A second run finds nothing left to do.
    again = remove_tenant(target, instance, "acme", confirmed=True, config_root=config_root)
    assert not any(again.removed.values())
