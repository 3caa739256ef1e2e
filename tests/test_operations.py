"""Operations, end to end on a real Dagster instance, the sandbox over real HTTP and
a real webhook receiver: per-source schedules ask for one run per active tenant; a
backfill of 3 days for 2 tenants materializes exactly those partitions over exactly
that window; a tenant with a broken credential fails alone, and the alert receiver
gets the failure (and a failed ERROR check), with a link and no secret.

One sandbox and one Dagster instance for the module; the runs load Stripe only
(the ``stripe_load`` job), so no dbt runs here (tests/test_backfill_window.py
covers the dbt side of a window).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    Backoff,
    DagsterInstance,
    DagsterRunStatus,
    Jitter,
    RunsFilter,
    asset,
    asset_check,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

import credentials
from assets.resources import BizosSettings
from assets.sources import is_transient, source_assets
from connectors.http_client import CredentialError as ConnectorCredentialError
from connectors.http_client import MalformedResponse, SourceRequestError, SourceUnavailable
from connectors.landing import read_table
from connectors.sources import SOURCES
from core.run_window import WINDOW_TAG
from core.settings import Settings, get_settings
from opsdb.tenants import disable_tenant, register_tenant
from pipelines.alerts import check_failure_alerts_sensor, run_failure_alerts
from pipelines.backfill import backfill
from pipelines.definitions import build_definitions, daily_refresh, tenant_inboxes
from pipelines.runner import dagster_instance, run_tenants
from pipelines.schedules import CADENCES, CRON, Cadence, cadence_of, source_schedules
from sandbox.generator import generate_sources
from sandbox.server.running import RunningSandbox, start_sandbox
from tests.test_connector_sources import secret_for

GOOD = ("acme", "globex")
BROKEN = "initech"  # stores a Stripe key the provider refuses
IDLE = "hooli"  # a tenant partition nobody backfills
BAD_KEY = "sk_test_not_a_key_the_sandbox_knows_0123456789"


class Receiver:
    """A real HTTP server in a thread, recording each JSON body POSTed to it; it can be
    told to answer 503 to the next few requests."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.raw.append(body)
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Ops:
    def __init__(
        self, settings: Settings, instance: DagsterInstance, sb: RunningSandbox, rx: Receiver
    ) -> None:
        self.settings = settings
        self.instance = instance
        self.sandbox = sb
        self.receiver = rx
        self.defs = build_definitions(settings)
        as_of = datetime.strptime(sb.ground_truth.as_of, "%Y-%m-%dT%H:%M:%SZ").date()
        self.until = as_of - timedelta(days=5)
        self.since = self.until - timedelta(days=2)  # 3 days, both included


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    root = tmp_path_factory.mktemp("ops")
    home = root / "home"
    data = root / "data"
    generate_sources(data, tenants=[*GOOD, BROKEN, IDLE], scale=0.1, seed=7)
    receiver = Receiver()
    with start_sandbox(data) as sb, pytest.MonkeyPatch.context() as mp:
        # The assets read the rest of their settings from the environment, as deployed.
        mp.delenv("BIZOS_DATABASE_URL", raising=False)
        mp.setenv("BIZOS_HOME", str(home))
        # dagster_instance() exports DAGSTER_HOME: set here, so it is restored after.
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        mp.setenv("BIZOS_MASTER_KEY", credentials.generate_master_key().encoded())
        mp.setenv("BIZOS_ALERT_WEBHOOK_URL", receiver.url)
        mp.setenv("BIZOS_DAGSTER_URL", "http://dagster.example:3000/")
        mp.setenv("BIZOS_SOURCE_CONCURRENCY", json.dumps({"stripe": 2}))
        for name, value in sb.env().items():
            mp.setenv(name, value)
        settings = get_settings()
        for tenant in GOOD:
            credentials.set_secret(
                settings,
                tenant_id=tenant,
                source="stripe",
                secret=secret_for(sb, tenant, "stripe"),
                actor="test",
            )
        credentials.set_secret(
            settings, tenant_id=BROKEN, source="stripe", secret=BAD_KEY, actor="test"
        )
        instance = dagster_instance(settings)
        instance.add_dynamic_partitions("tenants", [*GOOD, BROKEN, IDLE])
        try:
            yield Ops(settings, instance, sb, receiver)
        finally:
            receiver.close()


@contextmanager
def sensor_context(ops: Ops, cursor: str | None = None) -> Iterator[Any]:
    """A sensor's context, closed after use: a context left open keeps Dagster's
    definitions-state storage pointing at an instance that is then collected."""
    with build_sensor_context(
        instance=ops.instance,
        cursor=cursor,
        resources={"bizos": BizosSettings(home=str(ops.settings.home), database_url="")},
    ) as context:
        yield context


# -- schedules ------------------------------------------------------------------------


def test_each_source_has_a_schedule_at_its_cadence_for_active_tenants_only(ops: Ops) -> None:
    schedules = {s.name: s for s in source_schedules}
    assert {f"{s}_{cadence_of(s)}" for s in [*SOURCES, "crm_export"]} == set(schedules)
    assert schedules["stripe_hourly"].cron_schedule == CRON[Cadence.HOURLY] == "15 * * * *"
    assert schedules["crm_api_hourly"].cron_schedule == CRON[Cadence.HOURLY]
    assert schedules["crm_export_hourly"].cron_schedule == CRON[Cadence.HOURLY]
    assert schedules["ga4_daily"].cron_schedule == CRON[Cadence.DAILY]
    assert CADENCES["sp_api"] is Cadence.DAILY  # catalogs, once the source lands
    assert cadence_of("a_source_added_later") is Cadence.DAILY

    register_tenant(ops.settings, IDLE)
    disable_tenant(ops.settings, IDLE)
    try:
        tick = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
        resources = {"bizos": BizosSettings(home=str(ops.settings.home), database_url="")}
        for name in ("stripe_hourly", "ga4_daily"):
            with build_schedule_context(
                instance=ops.instance, scheduled_execution_time=tick, resources=resources
            ) as context:
                requests = schedules[name](context)
            assert sorted(r.partition_key for r in requests) == sorted([*GOOD, BROKEN])
            source = name.rsplit("_", 1)[0]
            assert {r.run_key for r in requests} == {
                f"{source}:2026-11-29T10:15:{t}" for t in [*GOOD, BROKEN]
            }
        with build_schedule_context(
            instance=ops.instance, scheduled_execution_time=tick, resources=resources
        ) as context:
            assert IDLE not in {r.partition_key for r in daily_refresh(context)}

        # A new inbox folder is a new tenant, unless that tenant is disabled.
        for tenant in ("newco", "gone"):
            (ops.settings.inbox_dir / tenant).mkdir(parents=True)
        disable_tenant(ops.settings, "gone")
        with sensor_context(ops) as context:
            found = tenant_inboxes(context)
        assert [r.partition_key for r in found.run_requests or []] == ["newco"]
        with pytest.raises(ValueError, match=f"tenant {IDLE} is disabled"):
            run_tenants(ops.defs, ops.settings, ops.instance, tenant_ids=[IDLE])
    finally:
        register_tenant(ops.settings, IDLE)  # active again for the tests below
        for tenant in ("newco", "gone"):
            (ops.settings.inbox_dir / tenant).rmdir()


# -- backfill and a failing tenant ----------------------------------------------------


def test_a_backfill_of_3_days_for_2_tenants_loads_exactly_those(ops: Ops) -> None:
    runs = backfill(
        ops.defs,
        ops.settings,
        ops.instance,
        tenant_ids=list(GOOD),
        since=ops.since.isoformat(),
        until=ops.until.isoformat(),
        source="stripe",
    )
    assert [r.tenant_id for r in runs] == list(GOOD)
    assert all(r.success for r in runs), [r.error for r in runs]

    window = f"{ops.since.isoformat()}..{ops.until.isoformat()}"
    tagged = ops.instance.get_runs(RunsFilter(tags={WINDOW_TAG: window}))
    assert sorted(r.tags["dagster/partition"] for r in tagged) == sorted(GOOD)
    assert {r.job_name for r in tagged} == {"stripe_load"}
    for run in tagged:
        ingest = run.run_config["ops"]["stripe_ingest"]["config"]  # type: ignore[index]
        assert ingest == {"since": ops.since.isoformat(), "until": ops.until.isoformat()}

    for table in SOURCES["stripe"].tables:
        records = ops.instance.fetch_materializations(AssetKey(["stripe", table]), limit=50)
        assert {r.partition_key for r in records.records} == set(GOOD), table

    start = datetime.combine(ops.since, datetime.min.time(), UTC).timestamp()
    end = datetime.combine(ops.until + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    for tenant in GOOD:
        landed = read_table(ops.settings, "stripe", "charges", tenant)
        assert landed is not None and landed.num_rows > 0, tenant
        created = landed.column("created").to_pylist()
        assert all(start <= c < end for c in created), (tenant, min(created), max(created))
        truth = ops.sandbox.ground_truth.table(tenant, "stripe.charges")
        assert truth.count > landed.num_rows  # the window, not the whole history
    for tenant in (BROKEN, IDLE):
        assert read_table(ops.settings, "stripe", "charges", tenant) is None


def test_a_failing_tenant_does_not_stop_the_next_and_the_alert_arrives(ops: Ops) -> None:
    before = len(ops.receiver.bodies)
    with sensor_context(ops) as context:
        first = run_failure_alerts(context)  # nothing failed yet
    assert len(ops.receiver.bodies) == before and first is not None

    runs = backfill(
        ops.defs,
        ops.settings,
        ops.instance,
        tenant_ids=[BROKEN, "acme"],
        since=ops.since.isoformat(),
        until=ops.until.isoformat(),
        source="stripe",
    )
    broken, acme = runs
    assert acme.success, acme.error
    assert not broken.success
    assert "initech" in (broken.error or "") and "stripe" in (broken.error or "")
    assert BAD_KEY not in (broken.error or "")
    status = ops.instance.get_run_by_id(broken.run_id)
    assert status is not None and status.status is DagsterRunStatus.FAILURE

    ops.receiver.fail_next = 1  # the webhook hiccups once: the alert is retried
    with sensor_context(ops) as context:
        run_failure_alerts(context)
        cursor = context.cursor
    alerts = [b for b in ops.receiver.bodies[before:] if b["kind"] == "run_failure"]
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert["tenant"] == BROKEN and alert["job"] == "stripe_load"
    assert alert["run_id"] == broken.run_id
    assert alert["link"] == f"http://dagster.example:3000/runs/{broken.run_id}"
    assert "stripe/charges" in alert["asset"]
    assert "initech" in alert["error"] and "stripe" in alert["error"]
    assert not any(BAD_KEY.encode() in raw for raw in ops.receiver.raw)

    # The cursor moved past it: the next tick sends nothing again.
    with sensor_context(ops, cursor) as context:
        run_failure_alerts(context)
    assert len([b for b in ops.receiver.bodies[before:] if b["kind"] == "run_failure"]) == 1


def test_a_failed_error_check_is_alerted_with_its_asset(ops: Ops) -> None:
    @asset(key=["ops_test", "orders"])
    def orders() -> int:
        return 3

    @asset_check(asset=orders, name="no_negative_totals")
    def no_negative_totals() -> AssetCheckResult:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.ERROR, metadata={"negative_rows": 2}
        )

    @asset_check(asset=orders, name="row_count_warning")
    def row_count_warning() -> AssetCheckResult:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)

    before = len(ops.receiver.bodies)
    result = materialize(
        [orders, no_negative_totals, row_count_warning],
        instance=ops.instance,
        tags={"dagster/partition": "acme"},
    )
    assert result.success
    with sensor_context(ops) as context:
        check_failure_alerts_sensor(context)
    checks = [b for b in ops.receiver.bodies[before:] if b["kind"] == "check_failure"]
    assert [c["check"] for c in checks] == ["no_negative_totals"], checks
    assert checks[0]["asset"] == ["ops_test/orders"] and checks[0]["tenant"] == "acme"
    assert "negative_rows" in checks[0]["error"]
    assert checks[0]["link"].endswith(f"/runs/{result.run_id}")


def test_only_transient_source_errors_are_retried() -> None:
    """The step retry policy retries what may pass (the provider down past the
    client's own retries, the ops database unreachable), never what fails the same
    way again (a refused credential, a bad request, pages of the wrong shape)."""
    stripe = next(a for a in source_assets if a.op.name == "stripe_ingest")
    policy = stripe.op.retry_policy
    assert policy is not None and policy.max_retries == 3
    assert policy.backoff is Backoff.EXPONENTIAL and policy.jitter is Jitter.PLUS_MINUS
    where = {"source": "stripe", "tenant_id": "acme"}
    assert is_transient(SourceUnavailable("503 for 8 tries", **where))
    assert is_transient(credentials.CredentialStoreUnavailable("ops db down"))
    for permanent in (
        ConnectorCredentialError("401", **where),
        MalformedResponse("not JSON", **where),
        SourceRequestError("400", **where),
    ):
        assert not is_transient(permanent)


def test_source_pools_carry_each_sources_limit(ops: Ops) -> None:
    storage = ops.instance.event_log_storage
    assert storage.get_concurrency_info("source_stripe").slot_count == 2
    assert storage.get_concurrency_info("source_ga4").slot_count == 4  # the default
    stripe = next(a for a in source_assets if a.op.name == "stripe_ingest")
    assert stripe.op.pool == "source_stripe"


def test_an_embedded_instance_keeps_its_history_in_sqlite_under_bizos_home(ops: Ops) -> None:
    config = (Path(ops.settings.home) / "dagster" / "dagster.yaml").read_text()
    assert f"base_dir: {ops.settings.home / 'dagster'}" in config
    assert type(ops.instance.run_storage).__name__ == "SqliteRunStorage"
    assert ops.instance.get_runs_count() >= 4


def test_run_history_on_postgres_survives_a_new_instance(
    pg_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dagster_instance() exports DAGSTER_HOME: set here, so it is restored after.
    monkeypatch.setenv("DAGSTER_HOME", str(pg_settings.home / "dagster"))

    @asset
    def probe() -> int:
        return 1

    first = dagster_instance(pg_settings)
    assert type(first.run_storage).__name__ == "PostgresRunStorage"
    run_id = materialize([probe], instance=first).run_id
    first.dispose()

    # Another machine (another DAGSTER_HOME), the same database: the same history.
    other = get_settings(home=tmp_path / "elsewhere", database_url=pg_settings.postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(other.home / "dagster"))
    second = dagster_instance(other)
    found = second.get_run_by_id(run_id)
    assert found is not None and found.status is DagsterRunStatus.SUCCESS
    assert second.fetch_materializations(AssetKey("probe"), limit=1).records
    second.dispose()


def test_a_bad_backfill_is_refused_with_the_reason(ops: Ops) -> None:
    today = date.today()
    cases = [
        (["acme"], "2026-02-30", None, "--since '2026-02-30' is not a day"),
        ([], "2026-01-01", None, "name the tenants"),
        (["nobody"], "2026-01-01", None, "not a tenant partition: nobody"),
        (["acme"], (today + timedelta(days=3)).isoformat(), None, "nothing to reload"),
    ]
    for tenants, since, until, message in cases:
        with pytest.raises(ValueError, match=message):
            backfill(
                ops.defs,
                ops.settings,
                ops.instance,
                tenant_ids=tenants,
                since=since,
                until=until,
                source="stripe",
            )
