"""Tenant credentials: envelope encryption, both stores, rotation, audit.

Each store test runs twice, on the embedded SQLite store and on a fresh real
Postgres database. Tampering is done with plain SQL on the real tables, the way an
attacker or a bad migration would.
"""

from __future__ import annotations

import base64
import secrets
import sqlite3
import threading
from contextlib import closing
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from core.settings import Settings, Target
from credentials import (
    AuditAction,
    AuditOutcome,
    CredentialNotFound,
    CredentialUnreadable,
    InvalidCredentialName,
    MasterKey,
    MasterKeyError,
    MasterKeyMismatch,
    delete_secret,
    generate_master_key,
    get_secret,
    list_credentials,
    master_key_ring,
    read_audit,
    rotate_master_key,
    set_secret,
)
from credentials.crypto import DataKey, parse_master_key, parse_master_keys
from credentials.store import StoredDataKey

OLD = generate_master_key()
NEW = generate_master_key()
ACTOR = "dagster:stripe_charges"


def fake_secret(label: str = "stripe") -> str:
    return f"sk_live_{label}_{secrets.token_hex(12)}"


def with_keys(settings: Settings, *keys: MasterKey | None) -> Settings:
    value = ",".join(k.encoded() for k in keys if k is not None) or None
    return settings.model_copy(update={"master_key": SecretStr(value) if value else None})


def raw(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Plain SQL on the store's tables; ``{ops}`` is the schema prefix, ``?`` a parameter."""
    if settings.target is Target.POSTGRES:
        with psycopg.connect(settings.postgres_url) as pg:
            cur = pg.execute(statement.format(ops="ops.").replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    with closing(sqlite3.connect(settings.state_dir / "ops.sqlite")) as conn, conn:
        return conn.execute(statement.format(ops=""), params).fetchall()


@pytest.fixture(params=["embedded", "postgres"])
def store(request: pytest.FixtureRequest) -> Settings:
    """Settings for one store, holding the master key OLD."""
    base = request.getfixturevalue("settings" if request.param == "embedded" else "pg_settings")
    return with_keys(base, OLD)


# -- round trip and isolation ----------------------------------------------------------


def test_round_trip_replace_delete(store: Settings) -> None:
    first, second = fake_secret(), fake_secret()
    set_secret(store, tenant_id="acme", source="stripe", secret=first, actor="cli:test")
    assert get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR) == first

    set_secret(store, tenant_id="acme", source="stripe", secret=SecretStr(second), actor="cli:t")
    assert get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR) == second
    [info] = list_credentials(store)
    assert (info.tenant_id, info.source, info.key_id) == ("acme", "stripe", OLD.key_id)
    assert info.updated_at >= info.created_at

    assert delete_secret(store, tenant_id="acme", source="stripe", actor="cli:test")
    assert not delete_secret(store, tenant_id="acme", source="stripe", actor="cli:test")
    with pytest.raises(CredentialNotFound, match=r"tenant 'acme', source 'stripe'") as err:
        get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR)
    assert (err.value.tenant_id, err.value.source) == ("acme", "stripe")
    assert isinstance(err.value, LookupError)
    assert list_credentials(store) == []


def test_multiline_unicode_secret_round_trips(store: Settings) -> None:
    # A GA4 service-account JSON: several lines, and whatever a name holds.
    secret = '{\n  "type": "service_account",\n  "private_key": "-----BEGIN…\\n",\n  "n": "Zoë"\n}'
    set_secret(store, tenant_id="acme", source="ga4", secret=secret, actor="cli:test")
    assert get_secret(store, tenant_id="acme", source="ga4", actor=ACTOR) == secret


def test_tenants_with_the_same_source_are_kept_apart(store: Settings) -> None:
    acme, globex = fake_secret("acme"), fake_secret("globex")
    set_secret(store, tenant_id="acme", source="stripe", secret=acme, actor="cli:test")
    set_secret(store, tenant_id="globex", source="stripe", secret=globex, actor="cli:test")
    assert get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR) == acme
    assert get_secret(store, tenant_id="globex", source="stripe", actor=ACTOR) == globex
    assert [c.tenant_id for c in list_credentials(store, "globex")] == ["globex"]
    assert delete_secret(store, tenant_id="acme", source="stripe", actor="cli:test")
    assert get_secret(store, tenant_id="globex", source="stripe", actor=ACTOR) == globex
    # Each tenant has its own data key.
    wrapped = raw(store, "SELECT wrapped_key FROM {ops}tenant_data_keys")
    assert len({bytes(w) for (w,) in wrapped}) == 2


def test_nothing_at_rest_contains_the_secret(store: Settings) -> None:
    secret = fake_secret()
    set_secret(store, tenant_id="acme", source="stripe", secret=secret, actor="cli:test")
    get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR)
    needles = [secret.encode(), secret.encode().hex().encode(), OLD.encoded().encode()]
    if store.target is Target.POSTGRES:
        dumped = "".join(
            text
            for table in ("tenant_data_keys", "tenant_credentials", "credential_audit")
            for (text,) in raw(store, f"SELECT row_to_json(t)::text FROM ops.{table} t")
        ).encode()
        assert b"acme" in dumped  # the right rows were read
    else:
        files = sorted(store.state_dir.glob("ops.sqlite*"))
        dumped = b"".join(path.read_bytes() for path in files)
        assert b"acme" in dumped and b"stripe" in dumped
        assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    for needle in needles:
        assert needle not in dumped


# -- tampering -----------------------------------------------------------------------


def test_ciphertext_moved_to_another_tenant_or_source_fails_clearly(store: Settings) -> None:
    for tenant in ("acme", "globex"):
        for source in ("stripe", "saleor"):
            set_secret(
                store, tenant_id=tenant, source=source, secret=fake_secret(), actor="cli:test"
            )
    copy = (
        "UPDATE {ops}tenant_credentials SET ciphertext ="
        " (SELECT ciphertext FROM {ops}tenant_credentials WHERE tenant_id = ? AND source = ?)"
        " WHERE tenant_id = ? AND source = ?"
    )
    raw(store, copy, ("acme", "stripe", "globex", "stripe"))
    with pytest.raises(CredentialUnreadable, match="another tenant or source") as err:
        get_secret(store, tenant_id="globex", source="stripe", actor=ACTOR)
    assert "globex" in str(err.value) and "stripe" in str(err.value)

    raw(store, copy, ("acme", "stripe", "acme", "saleor"))
    with pytest.raises(CredentialUnreadable, match="another tenant or source"):
        get_secret(store, tenant_id="acme", source="saleor", actor=ACTOR)

    # Moving the data key along with the ciphertext does not help: the key is bound too.
    raw(
        store,
        "UPDATE {ops}tenant_data_keys SET wrapped_key ="
        " (SELECT wrapped_key FROM {ops}tenant_data_keys WHERE tenant_id = ?)"
        " WHERE tenant_id = ?",
        ("acme", "globex"),
    )
    with pytest.raises(CredentialUnreadable, match="data key of tenant 'globex'"):
        get_secret(store, tenant_id="globex", source="stripe", actor=ACTOR)

    assert get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR)
    refused = [e for e in read_audit(store, "globex") if e.outcome is AuditOutcome.REFUSED]
    assert len(refused) == 2


# -- master keys ---------------------------------------------------------------------


def test_wrong_master_key_is_refused_with_a_clear_message(store: Settings) -> None:
    set_secret(store, tenant_id="acme", source="stripe", secret=fake_secret(), actor="cli:test")
    wrong = with_keys(store, NEW)
    message = (
        "BIZOS_MASTER_KEY does not match the key these credentials were stored under"
        f" (key id {NEW.key_id}, expected {OLD.key_id})"
    )
    with pytest.raises(MasterKeyMismatch) as err:
        get_secret(wrong, tenant_id="acme", source="stripe", actor=ACTOR)
    assert str(err.value) == message
    # Neither replacing a secret nor adding a tenant forks the store onto a second key.
    with pytest.raises(MasterKeyMismatch):
        set_secret(wrong, tenant_id="acme", source="stripe", secret="x", actor="cli:test")
    with pytest.raises(MasterKeyMismatch):
        set_secret(wrong, tenant_id="globex", source="stripe", secret="x", actor="cli:test")
    assert {c.key_id for c in list_credentials(store)} == {OLD.key_id}
    [last] = read_audit(store, "acme", limit=1)
    assert (last.action, last.outcome) == (AuditAction.READ, AuditOutcome.REFUSED)


def test_missing_master_key_says_so(store: Settings) -> None:
    unset = with_keys(store, None)
    with pytest.raises(MasterKeyError, match="BIZOS_MASTER_KEY is not set") as err:
        set_secret(unset, tenant_id="acme", source="stripe", secret="x", actor="cli:test")
    assert "new-master-key" in str(err.value)
    with pytest.raises(MasterKeyError, match="BIZOS_MASTER_KEY is not set"):
        get_secret(unset, tenant_id="acme", source="stripe", actor=ACTOR)


def test_master_key_formats() -> None:
    raw_key = secrets.token_bytes(32)
    expected = MasterKey(raw_key).key_id
    forms = [
        raw_key.hex(),
        raw_key.hex().upper(),
        base64.b64encode(raw_key).decode(),
        base64.urlsafe_b64encode(raw_key).decode().rstrip("="),
        f"  {base64.urlsafe_b64encode(raw_key).decode()}\n",
    ]
    for form in forms:
        assert parse_master_key(form).key_id == expected
    ring = parse_master_keys(f"{NEW.encoded()}, {OLD.encoded()}")
    assert ring.key_ids == [NEW.key_id, OLD.key_id] and ring.primary == NEW
    assert len(expected) == 8 and int(expected, 16) >= 0


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not a key at all!", "not a key"),
        ("c2hvcnQ=", "decodes to 5 bytes"),
        ("ab" * 31, "decodes to 46 bytes"),
        ("ab" * 33, "decodes to 49 bytes"),
        ("", "not set"),
        ("   ", "not set"),
    ],
)
def test_malformed_master_key_message_never_shows_the_key(value: str, says: str) -> None:
    with pytest.raises(MasterKeyError, match=says) as err:
        parse_master_keys(value)
    if value.strip():
        assert value.strip() not in str(err.value)
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_malformed_entry_of_a_list_is_named() -> None:
    with pytest.raises(MasterKeyError, match=r"entry 2 of 2") as err:
        parse_master_keys(f"{NEW.encoded()},oops")
    assert NEW.encoded() not in str(err.value) and "oops" not in str(err.value)


def test_reprs_hold_no_key_material() -> None:
    data_key = DataKey.generate()
    stored = StoredDataKey("acme", OLD.key_id, OLD.wrap(data_key, tenant_id="acme"))
    texts = [repr(OLD), repr(data_key), repr(stored), repr(parse_master_keys(OLD.encoded()))]
    for text in texts:
        assert OLD.encoded() not in text and data_key._key.hex() not in text
        assert "wrapped" not in text
    assert OLD.key_id in repr(OLD)


# -- rotation ------------------------------------------------------------------------


def test_rotation_rewraps_only_data_keys_and_rolls_with_a_key_list(store: Settings) -> None:
    values = {(t, "stripe"): fake_secret(t) for t in ("acme", "globex", "initech")}
    for (tenant, source), value in values.items():
        set_secret(store, tenant_id=tenant, source=source, secret=value, actor="cli:test")

    # The roll starts: processes get "new,old" before the rotation and still read.
    rolling = with_keys(store, NEW, OLD)
    assert get_secret(rolling, tenant_id="acme", source="stripe", actor=ACTOR)
    # A tenant added mid-roll lands under the key everybody else is under.
    values[("hooli", "stripe")] = fake_secret("hooli")
    set_secret(
        rolling,
        tenant_id="hooli",
        source="stripe",
        secret=values[("hooli", "stripe")],
        actor="cli:test",
    )
    assert {c.key_id for c in list_credentials(store)} == {OLD.key_id}

    stored = "SELECT tenant_id, ciphertext FROM {ops}tenant_credentials ORDER BY tenant_id"
    ciphertexts = raw(store, stored)
    assert rotate_master_key(store, NEW.encoded(), actor="cli:test") == 4
    assert raw(store, stored) == ciphertexts  # secrets' ciphertexts are untouched
    assert {c.key_id for c in list_credentials(store)} == {NEW.key_id}

    with pytest.raises(MasterKeyMismatch) as err:
        get_secret(store, tenant_id="acme", source="stripe", actor=ACTOR)
    assert str(err.value) == (
        "BIZOS_MASTER_KEY does not match the key these credentials were stored under"
        f" (key id {OLD.key_id}, expected {NEW.key_id})"
    )
    for settings in (with_keys(store, NEW), rolling, with_keys(store, OLD, NEW)):
        for (tenant, source), value in values.items():
            assert get_secret(settings, tenant_id=tenant, source=source, actor=ACTOR) == value

    # Run again (an operator re-running, or a second process): nothing left to do.
    assert rotate_master_key(rolling, NEW) == 0
    rotations = [e for e in read_audit(store) if e.action is AuditAction.ROTATE]
    assert sorted(e.tenant_id for e in rotations) == ["acme", "globex", "hooli", "initech"]
    assert all(e.source is None and e.actor == "cli:test" for e in rotations)


def test_rotation_is_all_or_nothing(store: Settings) -> None:
    for tenant in ("acme", "globex"):
        set_secret(store, tenant_id=tenant, source="stripe", secret=fake_secret(), actor="t:t")
    # One data key under a key this process does not hold: the rotation must not half-run.
    raw(store, "UPDATE {ops}tenant_data_keys SET key_id = 'deadbeef' WHERE tenant_id = 'globex'")
    with pytest.raises(MasterKeyMismatch, match="expected deadbeef"):
        rotate_master_key(store, NEW)
    keys = dict(raw(store, "SELECT tenant_id, key_id FROM {ops}tenant_data_keys"))
    assert keys == {"acme": OLD.key_id, "globex": "deadbeef"}
    assert not [e for e in read_audit(store) if e.action is AuditAction.ROTATE]


def test_rotation_refuses_a_list_or_a_bad_new_key(store: Settings) -> None:
    with pytest.raises(MasterKeyError, match="exactly one"):
        rotate_master_key(store, f"{NEW.encoded()},{OLD.encoded()}")
    with pytest.raises(MasterKeyError, match="new master key decodes to"):
        rotate_master_key(store, "c2hvcnQ=")


def test_readers_keep_working_during_rotation(store: Settings) -> None:
    values = {t: fake_secret(t) for t in ("acme", "globex", "initech")}
    for tenant, value in values.items():
        set_secret(store, tenant_id=tenant, source="stripe", secret=value, actor="cli:test")
    rolling = with_keys(store, NEW, OLD)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            for tenant, value in values.items():
                try:
                    got = get_secret(rolling, tenant_id=tenant, source="stripe", actor="t:reader")
                    assert got == value
                    reads[0] += 1
                except BaseException as exc:  # collected and re-raised in the test thread
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert rotate_master_key(store, NEW) == 3
        assert rotate_master_key(with_keys(store, NEW), OLD) == 3  # and back
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, [type(e).__name__ for e in errors]
    assert reads[0] > 0


def test_concurrent_first_secrets_share_one_data_key(store: Settings) -> None:
    values = {f"source{i}": fake_secret(str(i)) for i in range(6)}
    errors: list[BaseException] = []

    def writer(source: str) -> None:
        try:
            set_secret(store, tenant_id="acme", source=source, secret=values[source], actor="t:w")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, [type(e).__name__ for e in errors]
    assert raw(store, "SELECT count(*) FROM {ops}tenant_data_keys") == [(1,)]
    for source, value in values.items():
        assert get_secret(store, tenant_id="acme", source=source, actor=ACTOR) == value


# -- audit ---------------------------------------------------------------------------


def test_every_read_is_audited_with_its_actor(store: Settings) -> None:
    set_secret(store, tenant_id="acme", source="stripe", secret=fake_secret(), actor="cli:alice")
    set_secret(store, tenant_id="globex", source="stripe", secret=fake_secret(), actor="cli:bob")
    for actor in ("dagster:stripe_charges", "dagster:stripe_invoices", "dagster:stripe_charges"):
        get_secret(store, tenant_id="acme", source="stripe", actor=actor)
    with pytest.raises(CredentialNotFound):
        get_secret(store, tenant_id="acme", source="ga4", actor="dagster:ga4_sessions")
    delete_secret(store, tenant_id="acme", source="stripe", actor="cli:alice")

    entries = read_audit(store, "acme")
    got = [(e.actor, e.source, e.action.value, e.outcome.value) for e in entries]
    assert got == [  # newest first
        ("cli:alice", "stripe", "delete", "ok"),
        ("dagster:ga4_sessions", "ga4", "read", "not_found"),
        ("dagster:stripe_charges", "stripe", "read", "ok"),
        ("dagster:stripe_invoices", "stripe", "read", "ok"),
        ("dagster:stripe_charges", "stripe", "read", "ok"),
        ("cli:alice", "stripe", "set", "ok"),
    ]
    assert all(e.tenant_id == "acme" and e.at.tzinfo is not None for e in entries)
    assert entries[0].at >= entries[-1].at
    assert len(read_audit(store)) == 7
    assert [e.actor for e in read_audit(store, "globex")] == ["cli:bob"]
    assert len(read_audit(store, limit=2)) == 2


def test_bad_names_are_refused_without_echoing_them(store: Settings) -> None:
    pasted = fake_secret()  # a secret pasted into the wrong argument
    with pytest.raises(InvalidCredentialName) as err:
        set_secret(store, tenant_id="acme", source=pasted + "!", secret="x", actor="cli:t")
    assert pasted not in str(err.value)
    with pytest.raises(InvalidCredentialName) as err:
        get_secret(store, tenant_id=pasted.upper(), source="stripe", actor=ACTOR)
    assert pasted.upper() not in str(err.value)
    with pytest.raises(InvalidCredentialName):
        get_secret(store, tenant_id="acme", source="stripe", actor="")
    with pytest.raises(InvalidCredentialName, match="empty"):
        set_secret(store, tenant_id="acme", source="stripe", secret="", actor="cli:t")


def test_reading_an_empty_store_creates_nothing_but_the_audit(settings: Settings) -> None:
    embedded = with_keys(settings, OLD)
    assert list_credentials(embedded) == [] and read_audit(embedded) == []
    assert not (embedded.state_dir / "ops.sqlite").exists()
    with pytest.raises(CredentialNotFound):
        get_secret(embedded, tenant_id="acme", source="stripe", actor=ACTOR)
    assert [e.outcome for e in read_audit(embedded)] == [AuditOutcome.NOT_FOUND]
    assert master_key_ring(embedded).key_ids == [OLD.key_id]
