"""The embedded (DuckDB file) serving store: API behaviour plus the file-swap details."""

from __future__ import annotations

import hashlib
import sqlite3

import duckdb
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings, Target
from serving.duckdb_store import DuckDBStore
from serving.keys import create_key
from serving.main import create_app
from serving.publish import publish_lead_scores
from serving.store import serving_store
from tests.test_serving_contract import ServingApiChecks, lead_scores_table


class TestEmbeddedServing(ServingApiChecks):
    @pytest.fixture
    def serving_settings(self, settings: Settings) -> Settings:
        assert settings.target is Target.DUCKDB
        return settings


def test_the_factory_picks_duckdb(settings: Settings) -> None:
    assert isinstance(serving_store(settings), DuckDBStore)


def test_publish_leaves_one_closed_file_and_a_log(settings: Settings) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 12))
    publish_lead_scores(settings, "globex", lead_scores_table("globex", 5))
    result = publish_lead_scores(settings, "acme", lead_scores_table("acme", 8))
    files = sorted(p.name for p in settings.serving_dir.iterdir())
    # No .wal and no half-written next file: only the live file and the lock.
    assert files == [".publish.lock", "serving.duckdb"]
    with duckdb.connect(str(settings.serving_dir / "serving.duckdb"), read_only=True) as con:
        counts = dict(
            con.execute("SELECT tenant_id, count(*) FROM lead_scores GROUP BY 1").fetchall()
        )
        log = con.execute(
            "SELECT tenant_id, rows FROM publish_log ORDER BY published_at"
        ).fetchall()
        last = con.execute("SELECT max(published_at) FROM publish_log").fetchone()
    assert counts == {"acme": 8, "globex": 5}
    assert log == [("acme", 12), ("globex", 5), ("acme", 8)]
    assert last is not None and last[0] == result.published_at


def test_a_reader_with_the_old_file_open_keeps_a_consistent_view(settings: Settings) -> None:
    """The rename swaps the path, not the open file: a reader mid-query is never torn."""
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 30, score_model="v1"))
    old = duckdb.connect(":memory:")
    old.execute(f"ATTACH '{settings.serving_dir / 'serving.duckdb'}' AS s (READ_ONLY)")
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 10, score_model="v2"))
    assert old.execute("SELECT score_model, count(*) FROM s.lead_scores GROUP BY 1").fetchall() == [
        ("v1", 30)
    ]
    old.close()
    rows = serving_store(settings).list_lead_scores(tenant_id="acme", limit=100)
    assert {r["score_model"] for r in rows} == {"v2"} and len(rows) == 10


def test_keys_are_stored_as_hashes_in_sqlite(settings: Settings) -> None:
    key = create_key(settings, "acme")
    with sqlite3.connect(settings.state_dir / "ops.sqlite") as conn:
        stored = conn.execute("SELECT * FROM api_keys").fetchall()
    assert len(stored) == 1
    assert key not in repr(stored)
    key_hash, tenant_id, prefix, _created, revoked = stored[0]
    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (tenant_id, prefix, revoked) == ("acme", key[:8], None)


def test_an_unreadable_serving_file_is_503(settings: Settings) -> None:
    settings.serving_dir.mkdir(parents=True)
    (settings.serving_dir / "serving.duckdb").write_bytes(b"not a database" * 1000)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["store"] == "duckdb" and "serving.duckdb" in ready.json()["detail"]
