"""API keys on both targets: one store over the ops database, hashes only.

Runs on the embedded SQLite file and on a fresh real Postgres database; the HTTP
side of keys (401s, Bearer, isolation) is in tests/test_serving_contract.py.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import migrations
from cli.main import app
from core.settings import Settings, Target, get_settings
from serving.keys import (
    PREFIX_LENGTH,
    KeyRequestError,
    create_key,
    find_grant,
    list_keys,
    resolve_key,
    revoke_key,
    revoke_prefix,
    touch_key,
)
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
    assert [(k.key_prefix, k.tenant_id) for k in listed] == [(acme[:PREFIX_LENGTH], "acme")]
    assert listed[0].revoked_at is not None and listed[0].revoked_at.tzinfo is not None
    assert listed[0].created_at <= listed[0].revoked_at
    assert {k.tenant_id for k in list_keys(target)} == {"acme", "globex"}


def test_only_the_hash_is_stored(target: Settings) -> None:
    key = create_key(target, "acme")
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    assert stored_rows(target) == [(key_hash, "acme", key[:PREFIX_LENGTH], None)]


def test_reading_keys_of_an_empty_embedded_store_creates_nothing(settings: Settings) -> None:
    assert resolve_key(settings, "bz_" + "x" * 43) is None
    assert list_keys(settings) == [] and revoke_key(settings, "bz_" + "x" * 43) is False
    assert not migrations.ops_sqlite_path(settings).exists()


def test_an_unreachable_postgres_is_store_unavailable(bizos_home: Path) -> None:
    down = get_settings(home=bizos_home, database_url="postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match=r"Postgres at 127\.0\.0\.1:1/none\) is unreachable"):
        find_grant(down, "bz_" + "0" * 43)
    with pytest.raises(StoreUnavailable):
        create_key(down, "acme")


def test_scopes_expiry_and_last_use(target: Settings) -> None:
    reader = create_key(target, "acme")
    admin = create_key(target, "acme", scopes="admin reviews:write")
    short = create_key(target, "acme", expires_in=timedelta(seconds=1))
    grant = find_grant(target, reader)
    assert grant is not None and grant.scopes == {"scores:read"}
    assert grant.allows("scores:read") and not grant.allows("reviews:write")
    found = find_grant(target, admin)
    assert found is not None and found.allows("reviews:write") and found.allows("scores:read")
    assert find_grant(target, short) is not None
    time.sleep(1.1)
    assert find_grant(target, short) is None  # expired: refused from then on
    states = {k.key_prefix: k.state for k in list_keys(target, "acme")}
    assert states[short[:PREFIX_LENGTH]] == "expired"
    assert states[reader[:PREFIX_LENGTH]] == "active"
    used_at = datetime.now(UTC)
    touch_key(target, grant.key_hash, used_at)
    info = next(k for k in list_keys(target) if k.key_prefix == reader[:PREFIX_LENGTH])
    assert info.last_used_at is not None and abs(info.last_used_at - used_at) < timedelta(seconds=1)
    with pytest.raises(KeyRequestError, match="unknown scope"):
        create_key(target, "acme", scopes="scores:write")
    with pytest.raises(KeyRequestError, match="positive"):
        create_key(target, "acme", expires_in=timedelta(0))


def test_revoke_by_prefix_refuses_unknown_names(target: Settings) -> None:
    key = create_key(target, "acme")
    other = create_key(target, "acme")
    with pytest.raises(KeyRequestError, match="no active key"):
        revoke_prefix(target, "bz_nosuchkey")
    assert revoke_prefix(target, key[:PREFIX_LENGTH]).revoked_at is not None
    assert resolve_key(target, key) is None and resolve_key(target, other) == "acme"
    with pytest.raises(KeyRequestError, match="no active key"):
        revoke_prefix(target, key[:PREFIX_LENGTH])


def test_keys_cli_lists_and_revokes_at_once(
    target: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bizos keys create/list/revoke` as an operator runs them; the key is printed once."""
    monkeypatch.setenv("BIZOS_HOME", str(target.home))
    if target.database_url is not None:
        monkeypatch.setenv("BIZOS_DATABASE_URL", target.database_url.get_secret_value())
    else:
        monkeypatch.delenv("BIZOS_DATABASE_URL", raising=False)
    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "-t", "acme", "-s", "scores:read", "--expires-in-days", "30"]
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert resolve_key(target, key) == "acme"
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0 and key[:PREFIX_LENGTH] in listed.output
    assert key not in listed.output and "active" in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key[:PREFIX_LENGTH]])
    assert revoked.exit_code == 0, revoked.output
    assert resolve_key(target, key) is None
    again = runner.invoke(app, ["keys", "revoke", key[:PREFIX_LENGTH]])
    assert again.exit_code == 1 and "nothing revoked" in again.output
    bad = runner.invoke(app, ["keys", "create", "-t", "acme", "-s", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output
