"""A source's whole history and its later changes, against the sandbox over real HTTP.

A Stripe account used since 2023 loads entirely on its first ingest (no day
partition caps it, no flag needed); a refund made after that load reaches the
lake at the next one, even when two changes to one charge arrive newest first in
separate batches; ``--since`` reloads a span without duplicates or moving the
cursor; and the CLI answers a bad day with a message, not a traceback.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest
from typer.testing import CliRunner

import cli.main
import credentials
from cli.main import app
from connectors.connector import days_window
from connectors.landing import read_table
from connectors.sources import SOURCES
from connectors.state import read_cursor
from core.settings import get_settings
from sandbox.generator import generate_sources
from sandbox.generator.stripe import history_days
from sandbox.server.running import RunningSandbox, start_sandbox
from tests.test_connector_sources import assert_truth, ingest, secret_for

OLD = "stark"  # a tenant whose Stripe history starts in 2023 (see history_days)
STRIPE = list(SOURCES["stripe"].tables)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    assert history_days(7, OLD) == 1150, "the generator no longer gives this tenant years"
    data = tmp_path_factory.mktemp("history") / "data"
    generate_sources(data, tenants=[OLD, "acme"], scale=0.1, seed=7)
    with start_sandbox(data) as sb:
        yield sb


def charges(settings, tenant: str = OLD) -> dict[str, dict]:
    landed = read_table(settings, "stripe", "charges", tenant)
    assert landed is not None
    return {row["id"]: row for row in landed.to_pylist()}


def refund(sb: RunningSandbox, charge_id: str, amount: int | None = None) -> httpx.Response:
    form = {"charge": charge_id, **({"amount": str(amount)} if amount is not None else {})}
    return httpx.post(
        sb.base_url("stripe").rstrip("/") + "/v1/refunds",
        data=form,
        headers={"Authorization": f"Bearer {sb.tenant_token(OLD, 'stripe')}"},
        timeout=10,
    )


def test_the_first_load_brings_history_from_before_2026(settings, sandbox):
    truth = sandbox.ground_truth.table(OLD, "stripe.charges")
    assert datetime.fromtimestamp(truth.min_ts, UTC).year == 2023
    ingest(settings, sandbox, "stripe", tenant=OLD, page_size=100)
    for table in STRIPE:
        assert_truth(settings, sandbox, "stripe", table, OLD)
    oldest = min(row["created"] for row in charges(settings).values())
    assert datetime.fromtimestamp(oldest, UTC).date() < date(2024, 1, 1)


def test_a_refund_after_the_first_load_reaches_the_lake(settings, sandbox):
    ingest(settings, sandbox, "stripe", tenant=OLD, page_size=100)
    before = charges(settings)
    paid = sorted(
        (c for c in before.values() if c["status"] == "succeeded" and not c["amount_refunded"]),
        key=lambda c: c["created"],
    )
    whole, twice = paid[0], paid[1]
    assert refund(sandbox, whole["id"]).status_code == 200
    # Two changes to one charge: read newest first and, with one-record batches,
    # landed in two batches; the lake must keep the later (full) refund.
    part = refund(sandbox, twice["id"], amount=twice["amount"] // 2)
    assert part.status_code == 200 and part.json()["object"] == "refund"
    assert refund(sandbox, twice["id"]).status_code == 200
    again = refund(sandbox, whole["id"])
    assert again.status_code == 400 and "already been refunded" in again.text

    ingest(settings, sandbox, "stripe", tenant=OLD, page_size=1, batch_size=1)
    after = charges(settings)
    assert len(after) == len(before)  # changed in place, not duplicated
    for charge in (whole, twice):
        row = after[charge["id"]]
        assert (row["amount_refunded"], row["refunded"]) == (charge["amount"], True)
    untouched = paid[2]["id"]
    assert after[untouched]["amount_refunded"] == 0
    # Each refund also added a balance transaction (re-read by the rolling window).
    txns = read_table(settings, "stripe", "balance_transactions", OLD)
    assert txns is not None
    as_of = datetime.strptime(sandbox.ground_truth.as_of, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    later = [t for t in txns.to_pylist() if t["created"] > as_of.timestamp()]
    refunds = [t for t in later if t["type"] == "refund"]
    assert sorted(-t["amount"] for t in refunds) == sorted(
        [whole["amount"], twice["amount"] // 2, twice["amount"] - twice["amount"] // 2]
    )


def test_a_dispute_after_the_first_load_reaches_the_lake(settings, sandbox):
    """A dispute's events carry the dispute, not the charge, and Stripe sends no
    charge.updated: the connector re-reads the disputed charge by id."""
    ingest(settings, sandbox, "stripe", tenant=OLD, page_size=100)
    before = charges(settings)
    open_charges = [
        c
        for c in before.values()
        if c["status"] == "succeeded" and not c["amount_refunded"] and not c["disputed"]
    ]
    charge = max(open_charges, key=lambda c: c["created"])
    made = httpx.post(
        f"{sandbox.url}/_sandbox/stripe/disputes",
        data={"charge": charge["id"]},
        headers={"Authorization": f"Bearer {sandbox.tenant_token(OLD, 'stripe')}"},
        timeout=10,
    )
    assert made.status_code == 200, made.text
    dispute = made.json()
    assert dispute["object"] == "dispute" and dispute["charge"] == charge["id"]
    sandbox.reset_log()

    ingest(settings, sandbox, "stripe", tenant=OLD, page_size=100)
    after = charges(settings)
    assert len(after) == len(before)
    assert after[charge["id"]]["disputed"] is True
    assert sum(1 for c in after.values() if c["disputed"]) == 1 + sum(
        1 for c in before.values() if c["disputed"]
    )
    assert len(sandbox.requests("stripe", f"/v1/charges/{charge['id']}")) == 1
    txns = read_table(settings, "stripe", "balance_transactions", OLD)
    assert txns is not None
    (withdrawal,) = [t for t in txns.to_pylist() if t["source"] == dispute["id"]]
    assert (withdrawal["type"], withdrawal["reporting_category"]) == ("adjustment", "dispute")
    assert withdrawal["net"] == -charge["amount"] - 1500


def test_since_reloads_a_span_without_duplicates_or_moving_the_cursor(settings, sandbox):
    ingest(settings, sandbox, "stripe", tenant="acme", tables=["charges", "customers"])
    cursor = read_cursor(settings, tenant_id="acme", source="stripe", table="charges")
    window = days_window(date(2026, 6, 1), None, now=datetime.now(UTC))
    (charges_load, customers_load) = ingest(
        settings, sandbox, "stripe", tenant="acme", tables=["charges", "customers"], window=window
    )
    assert charges_load.rows_in > 0 and charges_load.rows_added == 0
    assert customers_load.rows_added == 0
    assert_truth(settings, sandbox, "stripe", "charges")
    assert_truth(settings, sandbox, "stripe", "customers")
    assert read_cursor(settings, tenant_id="acme", source="stripe", table="charges") == cursor


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2023-13-45"], "--date '2023-13-45' is not a day: use YYYY-MM-DD"),
        (["--since", "14/11/2023"], "--since '14/11/2023' is not a day: use YYYY-MM-DD"),
        (["--since", "2099-01-01"], "nothing to reload: --since 2099-01-01 is after today"),
        (["--until", "2024-01-01"], "--until needs --since"),
        (["--date", "2024-01-01", "--since", "2024-01-01"], "either --date or --since"),
    ],
)
def test_the_cli_answers_a_bad_day_with_a_message(bizos_home, monkeypatch, args, message):
    monkeypatch.setenv("BIZOS_HOME", str(bizos_home))
    # The CLI prints through its own handle on the terminal: read what it printed.
    monkeypatch.setattr(cli.main.console, "file", shown := io.StringIO())
    result = CliRunner().invoke(app, ["ingest", "--tenant", "acme", "--source", "stripe", *args])
    out = " ".join((result.output + shown.getvalue()).split())
    assert result.exit_code == 2, out
    assert message in out
    assert "Traceback" not in out


def test_bizos_ingest_with_no_flag_loads_the_whole_history(bizos_home, sandbox, monkeypatch, capfd):
    key = credentials.generate_master_key().encoded()
    monkeypatch.setenv("BIZOS_HOME", str(bizos_home))
    monkeypatch.setenv("DAGSTER_HOME", str(bizos_home))  # restored after the test
    monkeypatch.setenv("BIZOS_DATABASE_URL", "")
    monkeypatch.setenv("BIZOS_MASTER_KEY", key)
    monkeypatch.setenv("BIZOS_STRIPE_BASE_URL", sandbox.base_url("stripe"))
    settings = get_settings()
    credentials.set_secret(
        settings,
        tenant_id=OLD,
        source="stripe",
        secret=secret_for(sandbox, OLD, "stripe"),
        actor="test",
    )
    monkeypatch.setattr(cli.main.console, "file", shown := io.StringIO())
    result = CliRunner().invoke(
        app, ["ingest", "--tenant", OLD, "--source", "stripe", "--table", "charges"]
    )
    printed = shown.getvalue()
    assert result.exit_code == 0, printed
    truth = sandbox.ground_truth.table(OLD, "stripe.charges")
    assert len(charges(settings)) == truth.count
    assert "stripe/charges" in printed
