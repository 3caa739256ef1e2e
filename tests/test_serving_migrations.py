"""Postgres serving tables come from the Alembic ``serving`` tree and match their contracts."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.contracts.serving_tables import SERVING_TABLES
from core.contracts.table import TableContract
from core.settings import Settings
from migrations import SchemaAhead, head, upgrade
from serving.keys import create_key
from serving.main import create_app
from serving.postgres_store import postgres_type
from serving.publish import publish_lead_scores
from tests.test_serving_contract import lead_scores_table

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("contract", list(SERVING_TABLES.values()), ids=lambda c: c.name)
def test_migrated_tables_match_their_contracts(
    pg_settings: Settings, pg_url: str, contract: TableContract
) -> None:
    """A revision's frozen DDL and the contract the stores publish by must agree."""
    upgrade(pg_settings, "serving")
    with psycopg.connect(pg_url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'serving' AND table_name = %s ORDER BY ordinal_position",
            [contract.name],
        ).fetchall()
        key = conn.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary"
            " ORDER BY array_position(i.indkey, a.attnum)",
            [f"serving.{contract.name}"],
        ).fetchall()
        rls = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            [f"serving.{contract.name}"],
        ).fetchone()
    assert columns == [
        (f.name, postgres_type(f), "YES" if f.nullable else "NO") for f in contract.served_schema
    ]
    assert tuple(name for (name,) in key) == contract.primary_key
    assert rls == (True, True)


def test_upgrade_reaches_head_once(pg_settings: Settings, pg_url: str) -> None:
    assert upgrade(pg_settings, "serving") == head("serving")
    assert upgrade(pg_settings, "serving") == head("serving")
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute(
            "SELECT version_num FROM serving.alembic_version_serving"
        ).fetchall()
    assert versions == [(head("serving"),)]


def test_a_database_ahead_of_the_code_is_refused(pg_settings: Settings, pg_url: str) -> None:
    """A newer release migrated it: neither publish nor the API writes or reads it."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE SCHEMA serving")
        conn.execute(
            "CREATE TABLE serving.alembic_version_serving (version_num varchar(32) PRIMARY KEY)"
        )
        conn.execute("INSERT INTO serving.alembic_version_serving VALUES ('serving_9999')")
    with pytest.raises(SchemaAhead, match="serving_9999.*newer release"):
        publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 3))
    key = create_key(pg_settings, "acme")
    with TestClient(create_app(pg_settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        response = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert response.status_code == 503
        response = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert response.status_code == 503
    with psycopg.connect(pg_url) as conn:
        found = conn.execute("SELECT to_regclass('serving.lead_scores')").fetchone()
    assert found == (None,)


def test_the_api_role_sees_a_schema_ahead_as_not_ready(pg_settings: Settings, pg_url: str) -> None:
    from tests.test_serving_api import with_api_role

    api = with_api_role(pg_settings)
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE serving.alembic_version_serving SET version_num = 'serving_9999'")
    with TestClient(create_app(api)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "serving_9999" in ready.json()["detail"]


def test_serving_0002_upgrades_with_its_published_scores(
    pg_settings: Settings, pg_url: str
) -> None:
    """A database published by the v0 release upgrades in place: its rows stay served,
    as rules scores scored when they were published, and the next publish brings the
    whole score shape (unknown leads included) through the API role."""
    from tests.test_serving_api import with_api_role

    upgrade(pg_settings, "serving", revision="serving_0002")
    published = "2026-11-01 10:00:00+00"
    with psycopg.connect(pg_url) as conn:
        for tenant, lead, score, grade in [
            ("acme", "lead-1", 80, "A"),
            ("acme", "lead-2", 20, "C"),
            ("globex", "lead-1", 55, "B"),
        ]:
            conn.execute(
                "INSERT INTO serving.lead_scores (tenant_id, lead_id, email, created_at, score,"
                " grade, reasons, score_model, published_at) VALUES"
                " (%s, %s, %s, %s, %s, %s, 'title_seniority:+25', 'rules_v0', %s)",
                [tenant, lead, f"{lead}@{tenant}.example", published, score, grade, published],
            )
        conn.execute(
            "INSERT INTO serving.publish_log (table_name, tenant_id, rows, rows_replaced,"
            " published_at) VALUES ('lead_scores', 'acme', 2, 0, %s),"
            " ('lead_scores', 'globex', 1, 0, %s)",
            [published, published],
        )
    assert upgrade(pg_settings, "serving") == head("serving")
    api = with_api_role(pg_settings)
    acme, globex = create_key(pg_settings, "acme"), create_key(pg_settings, "globex")
    with TestClient(create_app(api)) as client:
        items = client.get("/v1/leads/scores", headers={"X-API-Key": acme}).json()["items"]
        assert [(i["lead_id"], i["score"], i["grade"], i["mql"]) for i in items] == [
            ("lead-1", 80, "A", True),
            ("lead-2", 20, "C", False),
        ]
        assert {(i["score_status"], i["model_version"], i["scored_at"]) for i in items} == {
            ("scored", "rules_v0", "2026-11-01T10:00:00Z")
        }
        publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 20))
        items = client.get(
            "/v1/leads/scores", params={"limit": 100}, headers={"X-API-Key": acme}
        ).json()["items"]
        assert len(items) == 20 and items[-1]["score_status"] == "unknown"
        other = client.get("/v1/leads/scores", headers={"X-API-Key": globex}).json()["items"]
        assert [(i["tenant_id"], i["lead_id"]) for i in other] == [("globex", "lead-1")]
