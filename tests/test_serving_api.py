"""The Postgres serving store: API behaviour, row-level security and the table swap."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.contracts.serving_tables import SERVING_TABLES
from core.contracts.table import TableContract
from core.settings import Settings, Target, get_settings
from migrations import ensure_current
from serving.api_role import ApiRoleError, create_api_role
from serving.keys import PREFIX_LENGTH, create_key
from serving.main import create_app
from serving.postgres_store import PostgresStore, postgres_type
from serving.publish import publish_lead_scores, publish_table
from serving.readers import TENANT_SETTING, PostgresReader
from serving.store import serving_store
from tests.api_metrics import api_metrics
from tests.test_serving_contract import (
    WIDGETS,
    ServingApiChecks,
    lead_scores_table,
    widgets_table,
)

# Roles are cluster-wide: one login role per xdist worker, so workers never alter the
# same role at once. Each test's database grants it CONNECT; dropped with the database.
API_ROLE = "bizos_api_test_" + os.environ.get("PYTEST_XDIST_WORKER", "main")


def with_api_role(pg_settings: Settings) -> Settings:
    """``pg_settings`` plus the API's own login role, as `bizos keys api-role` makes it."""
    url = create_api_role(pg_settings, API_ROLE)
    return pg_settings.model_copy(update={"api_database_url": SecretStr(url)})


def wait_for_feed(client: TestClient) -> None:
    """Until the app's change feed listens (its copies then follow publishes)."""
    feed = client.app.state.reader.change_feed  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not feed.live:
        assert time.monotonic() < deadline, "the change feed never listened"
        time.sleep(0.01)


@pytest.fixture
def api_settings(pg_settings: Settings) -> Settings:
    return with_api_role(pg_settings)


@pytest.mark.postgres
class TestPostgresServing(ServingApiChecks):
    @pytest.fixture
    def serving_settings(self, pg_settings: Settings) -> Settings:
        assert pg_settings.target is Target.POSTGRES
        return with_api_role(pg_settings)


@pytest.mark.postgres
class TestPostgresServingThroughSql(ServingApiChecks):
    """The same contract with no copies in memory (``BIZOS_API_SNAPSHOTS=false``): every
    key and row read through SQL, one round trip each, as tenants beyond the copies
    budget are read."""

    @pytest.fixture
    def serving_settings(self, pg_settings: Settings) -> Settings:
        return with_api_role(pg_settings).model_copy(update={"api_snapshots": False})


@pytest.mark.postgres
def test_a_read_through_sql_leaves_no_tenant_on_its_pooled_connection(
    two_tenants: Settings,
) -> None:
    """One pooled connection serves both tenants in turn: each read sees its own
    tenant's row of a lead id both hold, and the tenant it set ends with its read, so
    a later statement on that connection runs as no tenant at all."""
    api = with_api_role(two_tenants).model_copy(update={"api_snapshots": False})
    contract = SERVING_TABLES["lead_scores"]

    async def scenario() -> list[tuple[str, object]]:
        reader = PostgresReader(api, max_size=1)
        await reader.open()
        try:
            seen: list[tuple[str, object]] = []
            for tenant in ("acme", "globex", "acme"):
                got = await reader.get_row(
                    contract,
                    lambda row: b"",
                    tenant_id=tenant,
                    key={"lead_id": "lead-0003"},
                    unless_version=(),
                )
                assert got.rows is not None and len(got.rows) == 1
                seen.append((tenant, got.rows[0].row["tenant_id"]))

                async def left(conn: psycopg.AsyncConnection) -> object:
                    cur = await conn.execute("SELECT current_setting(%s, true)", [TENANT_SETTING])
                    row = await cur.fetchone()
                    return None if row is None else row[0]

                leftover = await reader._run(left)
                assert leftover in (None, ""), f"{tenant!r} outlived its read: {leftover!r}"
            return seen
        finally:
            await reader.close()

    seen = asyncio.run(scenario())
    assert seen == [("acme", "acme"), ("globex", "globex"), ("acme", "acme")]


@pytest.fixture
def two_tenants(pg_settings: Settings) -> Settings:
    publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 25))
    publish_lead_scores(pg_settings, "globex", lead_scores_table("globex", 9))
    return pg_settings


def as_reader(conn: psycopg.Connection, tenant_id: str | None) -> None:
    """What the API does at the start of every request's transaction."""
    conn.execute("SET LOCAL ROLE bizos_reader")
    if tenant_id is not None:
        conn.execute("SELECT set_config('bizos.tenant_id', %s, true)", [tenant_id])


@pytest.mark.postgres
def test_the_factory_picks_postgres(pg_settings: Settings) -> None:
    assert isinstance(serving_store(pg_settings), PostgresStore)


@pytest.mark.postgres
def test_row_level_security_not_just_where_clauses(two_tenants: Settings, pg_url: str) -> None:
    """A query with no tenant filter at all still sees only the reader's tenant."""
    with psycopg.connect(pg_url) as conn:
        for tenant_id, expected in [
            ("acme", [("acme", 25)]),
            ("globex", [("globex", 9)]),
            ("nobody", []),
            (None, []),
        ]:
            with conn.transaction():
                as_reader(conn, tenant_id)
                rows = conn.execute(
                    "SELECT tenant_id, count(*) FROM serving.lead_scores GROUP BY 1"
                ).fetchall()
            assert rows == expected, tenant_id
        # The reader can read neither the keys nor the publish log (it names tenants).
        create_key(two_tenants, "acme")
        for table in ("ops.api_keys", "serving.publish_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                as_reader(conn, "acme")
                conn.execute(f"SELECT * FROM {table}")
        # ... and cannot write to the served table.
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            as_reader(conn, "acme")
            conn.execute("DELETE FROM serving.lead_scores")


@pytest.mark.postgres
def test_publishes_keep_rls_grants_and_log(two_tenants: Settings, pg_url: str) -> None:
    publish_lead_scores(two_tenants, "acme", lead_scores_table("acme", 7))
    publish_lead_scores(two_tenants, "acme", lead_scores_table("acme", 3))
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'serving' AND c.relkind = 'r' ORDER BY relname"
        ).fetchall()
        assert tables == [
            ("ai_usage_cost", True, True),
            ("alembic_version_serving", False, False),
            ("lead_model_cards", True, True),
            ("lead_score_history", True, True),
            ("lead_scores", True, True),
            ("publish_log", False, False),
            ("revenue_monthly", True, True),
            ("sourcing_opportunities", True, True),
            ("supplier_risk", True, True),
            ("traffic_by_source", True, True),
        ]
        policies = conn.execute(
            "SELECT policyname, cmd, roles::text[] FROM pg_policies"
            " WHERE schemaname = 'serving' AND tablename = 'lead_scores' ORDER BY 1"
        ).fetchall()
        assert [(p[0], p[1], p[2]) for p in policies] == [
            # Superset's read-only group reads all tenants; Superset's own RLS
            # filters per analyst (docs/architecture.md, "Superset's Postgres login").
            ("dashboards_read", "SELECT", ["bizos_dashboards"]),
            ("publisher_all", "ALL", [conn.info.user]),
            ("tenant_isolation", "SELECT", ["bizos_reader"]),
        ]
        grant = conn.execute(
            "SELECT has_table_privilege('bizos_reader', 'serving.lead_scores', 'SELECT')"
        ).fetchone()
        assert grant == (True,)
        log = conn.execute(
            "SELECT table_name, tenant_id, rows, rows_replaced FROM serving.publish_log ORDER BY id"
        ).fetchall()
        assert log == [
            ("lead_scores", "acme", 25, 0),
            ("lead_scores", "globex", 9, 0),
            ("lead_scores", "acme", 7, 25),
            ("lead_scores", "acme", 3, 7),
        ]
        counts = conn.execute(
            "SELECT tenant_id, count(*) FROM serving.lead_scores GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert counts == [("acme", 3), ("globex", 9)]


def row_versions(conn: psycopg.Connection, table: str, tenant_id: str) -> list[tuple[str, ...]]:
    """Each row's physical version: a rewritten or moved row gets a new xmin and ctid."""
    return conn.execute(
        f"SELECT ctid::text, xmin::text FROM serving.{table} WHERE tenant_id = %s ORDER BY 1",
        [tenant_id],
    ).fetchall()


@pytest.mark.postgres
def test_publishing_one_tenant_leaves_other_tenants_rows_untouched(
    pg_settings: Settings, pg_url: str
) -> None:
    """The cost is the tenant's rows: the others' row versions are not rewritten."""
    publish_lead_scores(pg_settings, "globex", lead_scores_table("globex", 1000))
    publish_lead_scores(pg_settings, "initech", lead_scores_table("initech", 30))
    with psycopg.connect(pg_url) as conn:
        before = {t: row_versions(conn, "lead_scores", t) for t in ("globex", "initech")}
    first = publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 40))
    second = publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 7))
    assert (first.rows_replaced, second.rows_replaced) == (0, 40)
    with psycopg.connect(pg_url) as conn:
        after = {t: row_versions(conn, "lead_scores", t) for t in ("globex", "initech")}
        acme = row_versions(conn, "lead_scores", "acme")
    assert after == before and len(after["globex"]) == 1000
    assert len(acme) == 7


def create_like_a_migration(pg_url: str, contract: TableContract) -> None:
    """What a serving revision for a new mart does, rendered from the contract."""
    columns = ", ".join(
        f"{f.name} {postgres_type(f)}{'' if f.nullable else ' NOT NULL'}"
        for f in contract.served_schema
    )
    name = f"serving.{contract.name}"
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({', '.join(contract.primary_key)}))"
        )
        conn.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        conn.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        conn.execute(
            f"CREATE POLICY tenant_isolation ON {name} FOR SELECT TO bizos_reader"
            " USING (tenant_id = current_setting('bizos.tenant_id', true))"
        )
        conn.execute(
            f"CREATE POLICY publisher_all ON {name} FOR ALL TO CURRENT_USER"
            " USING (true) WITH CHECK (true)"
        )
        conn.execute(f"GRANT SELECT ON {name} TO bizos_reader")


@pytest.mark.postgres
def test_a_second_serving_table_survives_publishes_of_the_first(
    pg_settings: Settings, pg_url: str
) -> None:
    ensure_current(pg_settings, "serving")
    create_like_a_migration(pg_url, WIDGETS)
    publish_table(pg_settings, WIDGETS, "acme", widgets_table("acme", 9))
    with psycopg.connect(pg_url) as conn:
        widgets_before = row_versions(conn, "test_widgets", "acme")
    publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 5))
    publish_lead_scores(pg_settings, "globex", lead_scores_table("globex", 3))
    publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 4))
    with psycopg.connect(pg_url) as conn:
        assert row_versions(conn, "test_widgets", "acme") == widgets_before
    store = serving_store(pg_settings)
    widgets = store.list_rows(WIDGETS, tenant_id="acme", limit=100)
    assert [w["weight"] for w in widgets] == sorted((i % 7 for i in range(9)), reverse=True)
    assert store.get_row(WIDGETS, tenant_id="acme", key={"widget_id": "w003"}) is not None
    # Row-level security holds on the new table too.
    assert store.list_rows(WIDGETS, tenant_id="globex", limit=10) == []
    with psycopg.connect(pg_url) as conn, conn.transaction():
        as_reader(conn, "globex")
        assert conn.execute("SELECT count(*) FROM serving.test_widgets").fetchone() == (0,)


@pytest.mark.postgres
def test_keys_are_stored_as_hashes_outside_the_served_schema(
    pg_settings: Settings, pg_url: str
) -> None:
    key = create_key(pg_settings, "acme")
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute(
            "SELECT key_hash, tenant_id, key_prefix, revoked_at FROM ops.api_keys"
        ).fetchall()
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), "acme", key[:PREFIX_LENGTH], None)]


def test_an_unreachable_server_is_503_not_500(bizos_home: Path) -> None:
    """The app starts without its database; probes and calls say so instead of crashing."""
    nowhere = "postgresql://postgres@127.0.0.1:1/none"
    down = get_settings(home=bizos_home, database_url=nowhere, api_database_url=nowhere)
    with TestClient(create_app(down)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["store"] == "postgres" and ready.json()["status"] == "not_ready"
        response = client.get("/v1/leads/scores", headers={"X-API-Key": "bz_" + "k" * 43})
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.json()["detail"] == "serving store unavailable"


# -- the API's own login role (issue 8) ------------------------------------------------


def api_connect(settings: Settings) -> psycopg.Connection:
    assert settings.api_postgres_url is not None
    return psycopg.connect(settings.api_postgres_url, autocommit=True)


@pytest.mark.postgres
def test_the_api_role_sees_only_the_tenant_it_sets(two_tenants: Settings, pg_url: str) -> None:
    api = with_api_role(two_tenants)
    with api_connect(api) as conn:
        who = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert who == (API_ROLE, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole"
        ).fetchone()
        assert owned == (0,)
        for tenant_id, expected in [("acme", [("acme", 25)]), ("globex", [("globex", 9)])]:
            with conn.transaction():
                conn.execute("SELECT set_config('bizos.tenant_id', %s, true)", [tenant_id])
                # No tenant filter at all: RLS alone decides.
                rows = conn.execute(
                    "SELECT tenant_id, count(*) FROM serving.lead_scores GROUP BY 1"
                ).fetchall()
                assert rows == expected
                # RESET ROLE lands on the login role itself: nothing more to see.
                conn.execute("RESET ROLE")
                again = conn.execute(
                    "SELECT tenant_id, count(*) FROM serving.lead_scores GROUP BY 1"
                ).fetchall()
                assert again == expected
        with conn.transaction():
            assert conn.execute("SELECT count(*) FROM serving.lead_scores").fetchone() == (0,)
        # It cannot become the publisher (or anyone else), nor read keys or the log.
        for statement in (
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SELECT * FROM ops.api_keys",
            "SELECT * FROM serving.publish_log",
            "DELETE FROM serving.lead_scores",
            "INSERT INTO serving.lead_scores (tenant_id) VALUES ('acme')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement)
        # The publisher's policy names the publisher, of which the API role is no member.
        publisher = conn.execute(
            "SELECT roles::text[] FROM pg_policies WHERE policyname = 'publisher_all'"
        ).fetchone()
        assert publisher is not None and API_ROLE not in publisher[0]
        member = conn.execute(
            "SELECT bool_or(pg_has_role(current_user, r, 'MEMBER')) FROM unnest(%s::text[]) r",
            [publisher[0]],
        ).fetchone()
        assert member == (False,)
    with pytest.raises(ApiRoleError, match="privileged"):
        create_api_role(two_tenants, "postgres")


@pytest.mark.postgres
def test_without_the_api_role_the_api_serves_nothing(two_tenants: Settings) -> None:
    """Never falls back to the publisher's login: 503 until BIZOS_API_DATABASE_URL is set."""
    key = create_key(two_tenants, "acme")
    with TestClient(create_app(two_tenants)) as client:
        response = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert response.status_code == 503
        ready = client.get("/ready")
        assert ready.status_code == 503 and "BIZOS_API_DATABASE_URL" in ready.json()["detail"]


@pytest.mark.postgres
def test_a_held_lock_is_503_in_bounded_time_and_recovers(
    two_tenants: Settings, pg_url: str
) -> None:
    """Locks on the serving table and the key table: a tenant whose rows and key are
    already in the API's memory is still served, at once (no round trip at all); one
    that must be read from the database gets a 503 within the bounded time, not
    after the lock; both are served again once it is gone."""
    api = with_api_role(two_tenants).model_copy(update={"api_db_timeout_s": 1.0})
    acme, globex = create_key(api, "acme"), create_key(api, "globex")
    url = "/v1/leads/scores"
    with TestClient(create_app(api)) as client:
        wait_for_feed(client)  # memory is used once the API listens for changes
        deadline = time.monotonic() + 10
        reader = client.app.state.reader  # type: ignore[attr-defined]
        while not reader.in_memory("lead_scores", "acme"):  # read in the background
            assert client.get(url, headers={"X-API-Key": acme}).status_code == 200
            assert time.monotonic() < deadline, "acme's rows never reached memory"
            time.sleep(0.01)
        locked = threading.Event()
        release = threading.Event()

        def hold_lock() -> None:
            with psycopg.connect(pg_url) as conn, conn.transaction():
                conn.execute("LOCK TABLE serving.lead_scores IN ACCESS EXCLUSIVE MODE")
                conn.execute("LOCK TABLE ops.api_keys IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(30)

        holder = threading.Thread(target=hold_lock)
        holder.start()
        try:
            assert locked.wait(10)
            started = time.monotonic()
            in_memory = client.get(url, headers={"X-API-Key": acme})
            assert in_memory.status_code == 200 and time.monotonic() - started < 1
            started = time.monotonic()
            response = client.get(url, headers={"X-API-Key": globex})
            took = time.monotonic() - started
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            assert took < 3, took
            ready = client.get("/ready")
            assert ready.status_code == 503
        finally:
            release.set()
            holder.join(30)
        assert client.get(url, headers={"X-API-Key": globex}).status_code == 200
        assert client.get("/ready").status_code == 200


@pytest.mark.postgres
def test_ready_checks_the_readers_select_and_the_key_schema(
    two_tenants: Settings, pg_url: str
) -> None:
    api = with_api_role(two_tenants)
    key = create_key(api, "acme")
    with TestClient(create_app(api)) as client:
        assert client.get("/ready").status_code == 200
        with psycopg.connect(pg_url) as conn:
            conn.execute("REVOKE SELECT ON serving.lead_scores FROM bizos_reader")
        started = time.monotonic()
        ready = client.get("/ready")
        assert ready.status_code == 503 and time.monotonic() - started < 2
        assert "cannot read" in ready.json()["detail"]
        # A tenant whose rows the API has not read yet cannot be served (one already in
        # memory would be, until its next publish: /ready is what tells ops).
        data = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert data.status_code == 503, data.text
        with psycopg.connect(pg_url) as conn:
            conn.execute("GRANT SELECT ON serving.lead_scores TO bizos_reader")
            conn.execute("DROP FUNCTION ops.api_key_find(text)")
        # No way to look keys up: the API is broken, the key is not invalid.
        new_key = create_key(api, "acme")
        data = client.get("/v1/leads/scores", headers={"X-API-Key": new_key})
        assert data.status_code == 503, data.text
        assert client.get("/ready").status_code == 503


@pytest.mark.postgres
def test_history_and_model_cards_are_behind_row_level_security(
    pg_settings: Settings, pg_url: str
) -> None:
    """Like lead_scores: a reader with no tenant filter sees only its tenant's rows."""
    import pyarrow as pa

    from core.contracts.lead_model_cards import LEAD_MODEL_CARDS
    from core.contracts.lead_score_history import LEAD_SCORE_HISTORY
    from tests.test_serving_contract import history_rows, model_card_row

    for tenant, n in (("acme", 4), ("globex", 2)):
        history = pa.Table.from_pylist(history_rows(tenant, "lead-1", n))
        publish_table(pg_settings, LEAD_SCORE_HISTORY, tenant, history)
        card = pa.Table.from_pylist([model_card_row(tenant)])
        publish_table(pg_settings, LEAD_MODEL_CARDS, tenant, card)
    with psycopg.connect(pg_url) as conn:
        for table, expected in (
            ("lead_score_history", {"acme": [("acme", 4)], "globex": [("globex", 2)]}),
            ("lead_model_cards", {"acme": [("acme", 1)], "globex": [("globex", 1)]}),
        ):
            for tenant_id in ("acme", "globex", None):
                with conn.transaction():
                    as_reader(conn, tenant_id)
                    rows = conn.execute(
                        f"SELECT tenant_id, count(*) FROM serving.{table} GROUP BY 1"
                    ).fetchall()
                assert rows == expected.get(tenant_id or "", []), (table, tenant_id)
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                as_reader(conn, "acme")
                conn.execute(f"DELETE FROM serving.{table}")


@pytest.mark.postgres
def test_rows_in_memory_follow_publishes_and_a_lost_feed(
    two_tenants: Settings, pg_url: str
) -> None:
    """The API's copy of a tenant's rows is dropped by the publish NOTIFY; when its
    listening connection is lost, publishes made meanwhile are still seen (reads go to
    the database until it listens again, then copies are read afresh)."""
    api = with_api_role(two_tenants)
    key = create_key(api, "acme")
    url = "/v1/leads/scores"

    def served(client: TestClient) -> int:
        response = client.get(url, params={"limit": 500}, headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    def wait_for(condition: object, what: str) -> None:
        deadline = time.monotonic() + 10
        while not condition():  # type: ignore[operator]
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    with TestClient(create_app(api)) as client:
        feed = client.app.state.reader.change_feed  # type: ignore[attr-defined]
        wait_for(lambda: feed.live, "the change feed never listened")
        assert served(client) == 25
        seen = feed.count("lead_scores:acme")
        publish_lead_scores(two_tenants, "acme", lead_scores_table("acme", 11))
        wait_for(lambda: feed.count("lead_scores:acme") > seen, "no NOTIFY for the publish")
        assert served(client) == 11
        # Lose the feed's connection, then publish while nobody listens.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            old_pids = [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'bizos-api-feed'"
                    " AND datname = current_database()"
                ).fetchall()
            ]
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [old_pids]
            ).fetchall()
            assert killed == [(True,)]
            # pg_terminate_backend only signals: publish once the backend has gone, or
            # a publish in its last moments would still be heard (nobody must listen).
            wait_for(
                lambda: (
                    not conn.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'bizos-api-feed'"
                        " AND datname = current_database()"
                        " AND pid = ANY(%s)",
                        [old_pids],
                    ).fetchall()
                ),
                "the feed's backend outlived its termination",
            )
        publish_lead_scores(two_tenants, "acme", lead_scores_table("acme", 4))
        assert served(client) == 4  # the copy of 11 rows is never served again
        wait_for(lambda: feed.live, "the change feed did not reconnect")
        assert served(client) == 4


@pytest.mark.postgres
def test_a_tenants_first_key_check_loads_its_copies_for_the_next_requests(
    two_tenants: Settings,
) -> None:
    """The first request of a tenant's key starts loading its lead copy (in a worker
    thread), so its later requests are served from memory; other tenants' copies are
    not loaded, and a body from the copy is the one read through SQL."""
    api = with_api_role(two_tenants)
    key = create_key(api, "acme")
    with TestClient(create_app(api)) as client:
        reader = client.app.state.reader  # type: ignore[attr-defined]
        wait_for_feed(client)
        deadline = time.monotonic() + 10
        assert not reader.in_memory("lead_scores", "acme")
        # A lead not read yet: the first request may be read through SQL.
        first = client.get("/v1/leads/lead-0003/score", headers={"X-API-Key": key})
        assert first.status_code == 200, first.text
        while not reader.in_memory("lead_scores", "acme"):
            assert time.monotonic() < deadline, "acme's copy was never loaded"
            time.sleep(0.01)
        assert not reader.in_memory("lead_scores", "globex")
        again = client.get("/v1/leads/lead-0003/score", headers={"X-API-Key": key})
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]

        assert api_metrics(client)["bizos_api_snapshot_rows"] >= 25
        # The copy is in use as soon as it is in place; its loader thread counts
        # itself out just after.
        while api_metrics(client)["bizos_api_snapshot_loads_running"] != 0:
            assert time.monotonic() < deadline, "the copy's load never ended"
            time.sleep(0.01)


@pytest.mark.postgres
def test_tenants_beyond_the_copies_budget_read_through_sql_without_churn(
    two_tenants: Settings,
) -> None:
    """With more tenants read than BIZOS_API_SNAPSHOT_MAX_ROWS holds, a copy in use is
    not evicted for another: the tenant that does not fit reads through SQL, with the
    same bodies, instead of copies loading and evicting each other on every request."""
    api = with_api_role(two_tenants).model_copy(update={"api_snapshot_max_rows": 30})
    keys = {t: create_key(api, t) for t in ("acme", "globex")}  # 25 and 9 leads

    def round_trip(client: TestClient) -> None:
        for tenant, key in keys.items():
            got = client.get("/v1/leads/lead-0003/score", headers={"X-API-Key": key})
            assert got.status_code == 200 and got.json()["tenant_id"] == tenant, got.text
        deadline = time.monotonic() + 10
        while api_metrics(client)["bizos_api_snapshot_loads_running"]:
            assert time.monotonic() < deadline, "a copy never finished loading"
            time.sleep(0.01)

    with TestClient(create_app(api)) as client:
        wait_for_feed(client)
        for _ in range(2):
            round_trip(client)
        settled = api_metrics(client)
        for _ in range(8):
            round_trip(client)
        after = api_metrics(client)
    assert after["bizos_api_snapshot_builds_total"] == settled["bizos_api_snapshot_builds_total"]
    assert after["bizos_api_snapshot_rows"] <= 30
