"""`bizos credentials` through typer's CliRunner, on both stores, and the leak check.

The CLI reads its settings from the environment like in production, so each test
sets BIZOS_HOME, BIZOS_DATABASE_URL and BIZOS_MASTER_KEY with monkeypatch.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.credentials import credentials_app
from core.settings import Settings, get_settings
from credentials import (
    CredentialError,
    MasterKey,
    delete_secret,
    generate_master_key,
    get_secret,
    list_credentials,
    read_audit,
    rotate_master_key,
    set_secret,
)
from credentials.crypto import parse_master_key

OLD = generate_master_key()
NEW = generate_master_key()


class Cli:
    """Runs `bizos credentials ...` against one store; keeps every output it saw."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.runner = CliRunner()
        self.outputs: list[str] = []

    def use_keys(self, *keys: MasterKey) -> None:
        self._monkeypatch.setenv("BIZOS_MASTER_KEY", ",".join(k.encoded() for k in keys))

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> Result:
        result = self.runner.invoke(credentials_app, list(args), input=input)
        self.outputs += [result.stdout, result.stderr]
        if result.exception and not isinstance(result.exception, SystemExit):
            self.outputs.append("".join(traceback.format_exception(result.exception)))
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    @property
    def settings(self) -> Settings:
        return get_settings()


@pytest.fixture(params=["embedded", "postgres"])
def cli(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, bizos_home: Path) -> Cli:
    monkeypatch.setenv("BIZOS_HOME", str(bizos_home))
    monkeypatch.delenv("BIZOS_NEW_MASTER_KEY", raising=False)
    if request.param == "postgres":
        monkeypatch.setenv("BIZOS_DATABASE_URL", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("BIZOS_DATABASE_URL", raising=False)
    runner = Cli(monkeypatch)
    runner.use_keys(OLD)
    return runner


def test_set_reads_stdin_and_list_shows_no_value(cli: Cli) -> None:
    secret = f"sk_live_{secrets.token_hex(16)}"
    result = cli("set", "--tenant", "acme", "--source", "stripe", input=secret + "\n")
    assert "stored the stripe credential of acme" in result.stdout
    assert get_secret(cli.settings, tenant_id="acme", source="stripe", actor="t:t") == secret

    # One trailing newline is the line's end; anything before it belongs to the value.
    cli("set", "-t", "acme", "-s", "crm", input="line one\nline two\r\n")
    assert get_secret(cli.settings, tenant_id="acme", source="crm", actor="t:t") == (
        "line one\nline two"
    )

    listed = cli("list").stdout
    for expected in ("acme", "stripe", "crm", OLD.key_id, f"holds key id {OLD.key_id}"):
        assert expected in listed
    assert secret not in listed and "line one" not in listed
    assert "no credentials stored for globex" in cli("list", "--tenant", "globex").stdout
    assert "acme" not in cli("list", "--tenant", "globex").stdout


def test_set_refuses_an_empty_secret(cli: Cli) -> None:
    for empty in ("", "\n"):
        result = cli("set", "--tenant", "acme", "--source", "stripe", input=empty, code=2)
        assert "refusing to store nothing" in result.stderr
    assert list_credentials(cli.settings) == []


def test_audit_and_delete(cli: Cli) -> None:
    cli("set", "--tenant", "acme", "--source", "stripe", input="sk_test_1\n")
    get_secret(cli.settings, tenant_id="acme", source="stripe", actor="dagster:stripe_charges")
    audit = cli("audit", "--tenant", "acme").stdout
    assert "dagster:stripe_charges" in audit and "read" in audit and "set" in audit
    assert "cli:" in audit

    cli("delete", "--tenant", "acme", "--source", "stripe")
    result = cli("delete", "--tenant", "acme", "--source", "stripe", code=1)
    assert "no stripe credential stored for acme" in result.stderr
    assert "no credentials stored" in cli("list").stdout
    actions = [e.action.value for e in read_audit(cli.settings, "acme")]
    assert actions == ["delete", "delete", "read", "set"]
    assert "no audit rows for globex" in cli("audit", "-t", "globex").stdout


def test_rotate_master_from_env_then_from_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for tenant in ("acme", "globex"):
        cli("set", "--tenant", tenant, "--source", "stripe", input=f"sk_{tenant}\n")

    monkeypatch.setenv("BIZOS_NEW_MASTER_KEY", NEW.encoded())
    result = cli("rotate-master")
    assert f"re-wrapped 2 tenant data keys under master key id {NEW.key_id}" in result.stdout
    warned = cli("list").stdout  # BIZOS_MASTER_KEY still holds only the old key
    assert f"stored under key id {NEW.key_id}, which BIZOS_MASTER_KEY does not hold" in warned

    cli.use_keys(NEW, OLD)
    assert get_secret(cli.settings, tenant_id="globex", source="stripe", actor="t:t") == "sk_globex"

    # And back, the new key on stdin this time.
    monkeypatch.delenv("BIZOS_NEW_MASTER_KEY")
    result = cli("rotate-master", input=OLD.encoded() + "\n")
    assert f"re-wrapped 2 tenant data keys under master key id {OLD.key_id}" in result.stdout
    cli.use_keys(OLD)
    assert get_secret(cli.settings, tenant_id="acme", source="stripe", actor="t:t") == "sk_acme"


def test_clear_errors_for_master_key_problems(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("set", "--tenant", "acme", "--source", "stripe", input="sk_test_1\n")

    monkeypatch.delenv("BIZOS_MASTER_KEY")
    result = cli("set", "--tenant", "acme", "--source", "stripe", input="x\n", code=2)
    assert "BIZOS_MASTER_KEY is not set" in result.stderr
    assert "BIZOS_MASTER_KEY is not set" in cli("list").stdout  # list still works

    monkeypatch.setenv("BIZOS_MASTER_KEY", "0123456789abcdef")
    result = cli("set", "--tenant", "acme", "--source", "stripe", input="x\n", code=2)
    assert "BIZOS_MASTER_KEY decodes to 12 bytes" in result.stderr
    assert "0123456789abcdef" not in result.output

    cli.use_keys(NEW)
    result = cli("set", "--tenant", "acme", "--source", "stripe", input="x\n", code=1)
    assert (
        "BIZOS_MASTER_KEY does not match the key these credentials were stored under"
        f" (key id {NEW.key_id}, expected {OLD.key_id})"
    ) in result.stderr
    assert "Traceback" not in result.output and "InvalidTag" not in result.output

    monkeypatch.setenv("BIZOS_NEW_MASTER_KEY", f"{NEW.encoded()},{OLD.encoded()}")
    cli.use_keys(OLD)
    result = cli("rotate-master", code=2)
    assert "BIZOS_NEW_MASTER_KEY holds several keys" in result.stderr
    assert NEW.encoded() not in result.output


def test_new_master_key_prints_a_usable_key(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("new-master-key")
    key = result.stdout.strip()
    assert f"key id {parse_master_key(key).key_id}" in result.stderr
    monkeypatch.setenv("BIZOS_MASTER_KEY", key)
    cli("set", "--tenant", "acme", "--source", "stripe", input="sk_test_1\n")
    assert cli("list").stdout.count(parse_master_key(key).key_id) == 2


def test_no_secret_in_any_output_log_or_error(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's grep: across every operation, the secret is nowhere to be seen."""
    caplog.set_level(logging.DEBUG)
    secret = f"sk_live_LEAKCHECK_{secrets.token_hex(16)}"
    actor = "dagster:stripe_charges"
    errors: list[str] = []

    def expect_error(call: object, *args: object, **kwargs: object) -> None:
        try:
            call(*args, **kwargs)  # type: ignore[operator]
        except CredentialError as exc:
            errors.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
        else:
            raise AssertionError("expected a CredentialError")

    cli("set", "--tenant", "acme", "--source", "stripe", input=secret + "\n")
    cli("set", "--tenant", "globex", "--source", "stripe", input=secret + "\n")
    settings = cli.settings
    assert get_secret(settings, tenant_id="acme", source="stripe", actor=actor) == secret
    print(list_credentials(settings), read_audit(settings))
    cli("list")
    cli("audit")

    wrong = settings.model_copy(update={"master_key": None})
    expect_error(get_secret, wrong, tenant_id="acme", source="stripe", actor=actor)
    cli.use_keys(NEW)
    expect_error(get_secret, cli.settings, tenant_id="acme", source="stripe", actor=actor)
    cli("set", "--tenant", "acme", "--source", "stripe", input=secret + "\n", code=1)
    expect_error(get_secret, cli.settings, tenant_id="acme", source="nope", actor=actor)
    expect_error(set_secret, settings, tenant_id="acme", source=secret, secret=secret, actor=actor)

    cli.use_keys(OLD)
    monkeypatch.setenv("BIZOS_NEW_MASTER_KEY", NEW.encoded())
    cli("rotate-master")
    assert rotate_master_key(cli.settings, NEW) == 0
    cli.use_keys(NEW, OLD)
    assert get_secret(cli.settings, tenant_id="globex", source="stripe", actor=actor) == secret
    assert delete_secret(cli.settings, tenant_id="acme", source="stripe", actor=actor)
    cli("delete", "--tenant", "globex", "--source", "stripe")
    cli("audit", "--tenant", "acme")

    captured = capsys.readouterr()
    everything = "\n".join(
        [caplog.text, captured.out, captured.err, *cli.outputs, *errors]
        + [record.getMessage() for record in caplog.records]
    )
    assert "credential read" in caplog.text  # the logs were captured, and say what happened
    assert "does not match" in everything and "acme" in everything
    assert secret not in everything
    assert secret[len("sk_live_") :] not in everything
    for key in (OLD, NEW):
        assert key.encoded() not in everything
