"""The embedded serving store: API behaviour plus its per-tenant files and views file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from core.contracts.lead_scores import LEAD_SCORES
from core.settings import Settings, Target
from serving.duckdb_store import DuckDBStore, tenant_file
from serving.keys import PREFIX_LENGTH, create_key
from serving.main import create_app
from serving.publish import publish_lead_scores, publish_table
from serving.store import serving_store
from tests.api_metrics import api_metrics
from tests.test_serving_contract import (
    WIDGETS,
    ServingApiChecks,
    lead_scores_table,
    widgets_table,
)


class TestEmbeddedServing(ServingApiChecks):
    @pytest.fixture
    def serving_settings(self, settings: Settings) -> Settings:
        assert settings.target is Target.DUCKDB
        return settings


def identity(path: Path) -> tuple[int, int, int]:
    """What changes if a file is rewritten or replaced: inode, mtime and size."""
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def test_the_factory_picks_duckdb(settings: Settings) -> None:
    assert isinstance(serving_store(settings), DuckDBStore)


def test_publish_writes_one_file_per_tenant_a_log_and_views(settings: Settings) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 12))
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 5))
    result = publish_lead_scores(settings, "acme", lead_scores_table("acme", 8))
    assert (result.rows, result.rows_replaced) == (8, 12)
    tables_dir = settings.serving_dir / "lead_scores"
    # No half-written next file: the live files and their lock files only.
    assert sorted(p.name for p in tables_dir.iterdir()) == [
        ".tenant=acme.parquet.lock",
        ".tenant=globex.parquet.lock",
        "tenant=acme.parquet",
        "tenant=globex.parquet",
    ]
    acme = pq.read_table(tables_dir / "tenant=acme.parquet")
    assert acme.schema == LEAD_SCORES.served_schema.with_metadata(None)
    # Stored in API order, so a page is the head of the file.
    assert acme["score"].to_pylist() == sorted(acme["score"].to_pylist(), reverse=True)
    log = [json.loads(line) for line in (settings.serving_dir / "publish_log.jsonl").open()]
    assert [(e["tenant_id"], e["rows"], e["rows_replaced"]) for e in log] == [
        ("acme", 12, 0),
        ("globex", 5, 0),
        ("acme", 8, 12),
    ]
    # Superset and analysts open serving.duckdb read-only and see every tenant.
    with duckdb.connect(str(settings.serving_dir / "serving.duckdb"), read_only=True) as con:
        counts = dict(
            con.execute("SELECT tenant_id, count(*) FROM lead_scores GROUP BY 1").fetchall()
        )
        last = con.execute("SELECT max(published_at) FROM publish_log").fetchone()
    assert counts == {"acme": 8, "globex": 5}
    assert last is not None and last[0] == result.published_at


def test_publishing_one_tenant_touches_only_its_own_file(settings: Settings) -> None:
    """The cost is the tenant's rows: the other tenants' files are not rewritten."""
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 1000))
    publish_lead_scores(settings, "initech", lead_scores_table("initech", 30))
    others = {t: tenant_file(settings.serving_dir, "lead_scores", t) for t in ("globex", "initech")}
    before = {t: identity(p) for t, p in others.items()}
    views_before = identity(settings.serving_dir / "serving.duckdb")
    first = publish_lead_scores(settings, "acme", lead_scores_table("acme", 40))
    second = publish_lead_scores(settings, "acme", lead_scores_table("acme", 7))
    assert (first.rows_replaced, second.rows_replaced) == (0, 40)
    assert {t: identity(p) for t, p in others.items()} == before
    # The views file is only rewritten when a table appears, not per publish.
    assert identity(settings.serving_dir / "serving.duckdb") == views_before


def test_a_second_serving_table_survives_publishes_of_the_first(settings: Settings) -> None:
    publish_table(settings, WIDGETS, "acme", widgets_table("acme", 9))
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 5))
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 3))
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 4))
    store = serving_store(settings)
    widgets = store.list_rows(WIDGETS, tenant_id="acme", limit=100)
    assert len(widgets) == 9
    assert [w["weight"] for w in widgets] == sorted((i % 7 for i in range(9)), reverse=True)
    assert store.get_row(WIDGETS, tenant_id="acme", key={"widget_id": "w003"}) is not None
    assert store.list_rows(WIDGETS, tenant_id="globex", limit=10) == []
    with duckdb.connect(str(settings.serving_dir / "serving.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM test_widgets").fetchone() == (9,)
        assert con.execute("SELECT count(*) FROM lead_scores").fetchone() == (7,)


def test_a_reader_with_the_old_file_open_keeps_a_consistent_view(settings: Settings) -> None:
    """The rename swaps the path, not the open file: a reader mid-read is never torn."""
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 30, score_model="v1"))
    with tenant_file(settings.serving_dir, "lead_scores", "acme").open("rb") as old:
        publish_lead_scores(settings, "acme", lead_scores_table("acme", 10, score_model="v2"))
        stale = pq.read_table(old)
    assert set(stale["score_model"].to_pylist()) == {"v1"} and stale.num_rows == 30
    rows = serving_store(settings).list_rows(LEAD_SCORES, tenant_id="acme", limit=100)
    assert {r["score_model"] for r in rows} == {"v2"} and len(rows) == 10


def test_a_killed_publishs_leftover_is_swept_by_the_next(settings: Settings) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 3))
    leftover = settings.serving_dir / "lead_scores" / ".tenant=acme.parquet.next-deadbeef"
    leftover.write_bytes(b"half a parquet file")
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 4))
    assert not leftover.exists()


def test_keys_are_stored_as_hashes_in_sqlite(settings: Settings) -> None:
    key = create_key(settings, "acme")
    with sqlite3.connect(settings.state_dir / "ops.sqlite") as conn:
        stored = conn.execute("SELECT * FROM api_keys").fetchall()
        (row,) = conn.execute(
            "SELECT key_hash, tenant_id, key_prefix, revoked_at, scopes FROM api_keys"
        ).fetchall()
    assert len(stored) == 1
    assert key not in repr(stored)
    key_hash, tenant_id, prefix, revoked, scopes = row
    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (tenant_id, prefix, revoked, scopes) == (
        "acme",
        key[:PREFIX_LENGTH],
        None,
        "scores:read",
    )


def test_an_unreadable_serving_file_is_503(settings: Settings) -> None:
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 3))
    tenant_file(settings.serving_dir, "lead_scores", "acme").write_bytes(b"not parquet" * 100)
    key = create_key(settings, "acme")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        response = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.json()["detail"] == "serving store unavailable"
    os.unlink(settings.serving_dir / "publish_log.jsonl")
    (settings.serving_dir / "publish_log.jsonl").write_text("garbage\n")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["store"] == "duckdb" and "publish_log" in ready.json()["detail"]


def test_a_truncated_views_file_is_503_on_ready(settings: Settings) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 3))
    key = create_key(settings, "acme")
    views = settings.serving_dir / "serving.duckdb"
    views.write_bytes(views.read_bytes()[:1000])
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "serving.duckdb" in ready.json()["detail"]
        # The data routes read the tenant's file, not the views: they still serve.
        assert client.get("/v1/leads/scores", headers={"X-API-Key": key}).status_code == 200


def test_a_missing_key_table_is_503_not_401(settings: Settings) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 3))
    key = create_key(settings, "acme")
    with sqlite3.connect(settings.state_dir / "ops.sqlite") as conn:
        conn.execute("DROP TABLE api_keys")
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/leads/scores", headers={"X-API-Key": key})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["Retry-After"]


def test_a_file_out_of_api_order_is_still_paged_in_order(settings: Settings) -> None:
    """The reader trusts no file's order: one written unsorted pages like a sorted one."""
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 30))
    path = tenant_file(settings.serving_dir, "lead_scores", "acme")
    table = pq.read_table(path)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), path)
    key = create_key(settings, "acme")
    with TestClient(create_app(settings)) as client:
        lead = client.get("/v1/leads/lead-0003/score", headers={"X-API-Key": key})
        assert lead.status_code == 200 and lead.json()["lead_id"] == "lead-0003"
        seen, cursor = [], None
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/leads/scores", params=params, headers={"X-API-Key": key})
            seen += [(i["score"], i["lead_id"]) for i in page.json()["items"]]
            if not (cursor := page.json()["next_cursor"]):
                break
    # Unknown scores (null) come last.
    assert seen == sorted(seen, key=lambda s: (-(s[0] if s[0] is not None else -1), s[1]))
    assert len(seen) == 30 and seen[-1][0] is None


def test_every_tenants_lead_snapshot_is_built_before_the_process_serves(
    settings: Settings,
) -> None:
    """A started process already holds every tenant's lead bodies: no request pays for
    a cold snapshot; a publish after the start is still served at once."""
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 12))
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 5))
    acme = create_key(settings, "acme")
    with TestClient(create_app(settings)) as client:
        gauges = api_metrics(client)
        assert gauges["bizos_api_snapshots"] == 2
        assert gauges["bizos_api_snapshot_rows"] == 17
        publish_lead_scores(settings, "acme", lead_scores_table("acme", 3, score_model="v2"))
        body = client.get("/v1/leads/lead-0001/score", headers={"X-API-Key": acme}).json()
        assert body["score_model"] == "v2"


def test_concurrent_requests_check_each_key_in_the_store_once(settings: Settings) -> None:
    """Overlapping requests share one key lookup, and the key cache fills while they
    overlap. Reproduces the embedded server's slow runs (issue 8, 2 of 5 full benchmark
    runs at 2,000 req/s instead of 20,000): each request missing the cache opened
    ``ops.sqlite`` itself, and each open and close created and deleted its ``-wal``
    file, whose identity the cache watches, so while requests overlapped nothing was
    ever remembered and every request paid a SQLite connection."""
    tenants = [f"tenant{i}" for i in range(4)]
    for tenant in tenants:
        publish_lead_scores(settings, tenant, lead_scores_table(tenant, 3))
    app = create_app(settings)
    with TestClient(app) as client:
        keys = [create_key(settings, tenant) for tenant in tenants]  # after the start

        async def burst() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                answers = await asyncio.gather(
                    *(
                        http.get(
                            "/v1/leads/lead-0001/score",
                            headers={"X-API-Key": keys[i % len(keys)]},
                        )
                        for i in range(64)
                    )
                )
            return [a.status_code for a in answers]

        assert set(client.portal.call(burst)) == {200}  # each key's first use is recorded
        time.sleep(0.2)  # the last use's write is settled
        before = api_metrics(client)["bizos_api_key_store_lookups_total"]
        assert set(client.portal.call(burst)) == {200}
        second = api_metrics(client)["bizos_api_key_store_lookups_total"] - before
        assert set(client.portal.call(burst)) == {200}
        third = api_metrics(client)["bizos_api_key_store_lookups_total"] - before - second
    assert second <= len(keys), f"64 overlapping requests looked keys up {second:.0f} times"
    assert third == 0


def test_tenants_beyond_the_copies_budget_are_read_from_their_files(settings: Settings) -> None:
    """With more tenants read than BIZOS_API_SNAPSHOT_MAX_ROWS holds, the copies in use
    stay and the others are answered from their files, each request alone: no copy
    evicts another on every request (each rebuild encodes a tenant's every row). The
    answers are the same bodies, 404s and pages as from a held copy."""
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 8))
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 8))
    keys = {t: create_key(settings, t) for t in ("acme", "globex")}
    small = settings.model_copy(update={"api_snapshot_max_rows": 10})
    with TestClient(create_app(small)) as client, TestClient(create_app(settings)) as roomy:
        assert api_metrics(client)["bizos_api_snapshots"] == 1  # acme's: globex's does not fit
        for _ in range(3):
            for tenant, key in keys.items():
                for lead in ("lead-0001", "lead-0007"):
                    got = client.get(f"/v1/leads/{lead}/score", headers={"X-API-Key": key})
                    held = roomy.get(f"/v1/leads/{lead}/score", headers={"X-API-Key": key})
                    assert got.status_code == 200, got.text
                    assert got.content == held.content
                    assert got.headers["etag"] == held.headers["etag"]
                    assert got.json()["tenant_id"] == tenant
        missing = client.get("/v1/leads/lead-9999/score", headers={"X-API-Key": keys["globex"]})
        assert missing.status_code == 404
        page = client.get(
            "/v1/leads/scores", params={"limit": 5}, headers={"X-API-Key": keys["globex"]}
        )
        held_page = roomy.get(
            "/v1/leads/scores", params={"limit": 5}, headers={"X-API-Key": keys["globex"]}
        )
        assert page.json() == held_page.json()
        gauges = api_metrics(client)
        # A new publish is a new file: the key columns kept for the old one are not
        # used for it (a lead it no longer has is a 404, the others its new version).
        publish_lead_scores(settings, "globex", lead_scores_table("globex", 5))
        headers = {"X-API-Key": keys["globex"]}
        assert client.get("/v1/leads/lead-0007/score", headers=headers).status_code == 404
        got = client.get("/v1/leads/lead-0001/score", headers=headers)
        held = roomy.get("/v1/leads/lead-0001/score", headers=headers)
        assert got.status_code == 200 and got.content == held.content
        assert got.headers["etag"] == held.headers["etag"] != page.headers["etag"]
    assert gauges["bizos_api_snapshots"] == 1 and gauges["bizos_api_snapshot_rows"] == 8
    assert gauges["bizos_api_snapshot_builds_total"] == 1  # acme's, at the start: no churn
    assert gauges["bizos_api_uncached_reads_total"] >= 8  # every globex read
    # globex's key column, kept for its reads by key: 8 ids of 9 characters and offsets
    assert 0 < gauges["bizos_api_key_columns_bytes"] < 1_000
