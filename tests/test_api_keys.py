"""API keys on both targets: one store over the ops database, hashes only.

Runs on the embedded SQLite file and on a fresh real Postgres database; the HTTP
side of keys (401s, Bearer, isolation) is in tests/test_serving_contract.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

import migrations
from core.settings import Settings, Target, get_settings
from serving.keys import api_key_store, create_key, list_keys, resolve_key, revoke_key
from serving.store import StoreUnavailable


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue(
        "settings" if request.param == "embedded" else "pg_settings"
    )
    return settings


def stored_rows(settings: Settings) -> list[tuple[object, ...]]:
    table = "ops.api_keys" if settings.target is Target.POSTGRES else "api_keys"
    engine = sa.create_engine(migrations.engine_url(settings), poolclass=sa.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT key_hash, tenant_id, key_prefix, revoked_at FROM {table}")
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_keys_resolve_to_their_tenant_until_revoked(target: Settings) -> None:
    acme, globex = create_key(target, "acme"), create_key(target, "globex")
    assert resolve_key(target, acme) == "acme" and resolve_key(target, globex) == "globex"
    assert resolve_key(target, acme[:-1] + ("A" if acme[-1] != "A" else "B")) is None
    assert revoke_key(target, acme) is True
    assert revoke_key(target, acme) is False
    assert resolve_key(target, acme) is None and resolve_key(target, globex) == "globex"
    listed = list_keys(target, "acme")
    assert [(k.key_prefix, k.tenant_id) for k in listed] == [(acme[:8], "acme")]
    assert listed[0].revoked_at is not None and listed[0].revoked_at.tzinfo is not None
    assert listed[0].created_at <= listed[0].revoked_at
    assert {k.tenant_id for k in list_keys(target)} == {"acme", "globex"}


def test_only_the_hash_is_stored(target: Settings) -> None:
    key = create_key(target, "acme")
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    assert stored_rows(target) == [(key_hash, "acme", key[:8], None)]


def test_reading_keys_of_an_empty_embedded_store_creates_nothing(settings: Settings) -> None:
    assert resolve_key(settings, "bz_" + "x" * 43) is None
    assert list_keys(settings) == [] and revoke_key(settings, "bz_" + "x" * 43) is False
    assert not migrations.ops_sqlite_path(settings).exists()


def test_an_unreachable_postgres_is_store_unavailable(bizos_home: Path) -> None:
    down = get_settings(home=bizos_home, database_url="postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match=r"Postgres at 127\.0\.0\.1:1/none\) is unreachable"):
        api_key_store(down).find(key_hash="0" * 64)
    with pytest.raises(StoreUnavailable):
        create_key(down, "acme")
