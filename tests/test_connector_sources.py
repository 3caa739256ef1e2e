"""Every source against the sandbox over real HTTP: full and incremental loads,
faults, and runs killed mid-paging then resumed, each ending equal to the
generator's ground truth (counts and id checksums, no duplicate)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from connectors.connector import PageProgress
from connectors.http_client import RequestPolicy, SourceUnavailable
from connectors.ingest import run_source
from connectors.landing import read_table, table_dir
from connectors.sources import SOURCES
from connectors.state import connector_state, read_cursor, read_load_log
from core.settings import Settings, get_settings
from sandbox.generator import GroundTruth, generate_sources, id_checksum
from sandbox.server.running import RunningSandbox, start_sandbox

TENANTS = ("acme", "globex")
# The sources read from a time cursor, whose sandbox tables the ground truth counts
# (SP-API reads a catalog whole each run: tests/test_sp_api.py).
TIMED = [source for source, spec in SOURCES.items() if spec.read_by_time]
TABLES = [(source, table) for source in TIMED for table in SOURCES[source].tables]
PAGE = 50  # small pages: every table spans several
FAST = RequestPolicy(
    connect_timeout=2, read_timeout=5, backoff_base=0.001, backoff_max=0.01, retry_after_max=1
)


# -- shared with test_connector_failures ---------------------------------------------


def start(tmp: Path, *, with_defects: bool = False, scale: float = 0.25) -> RunningSandbox:
    data = tmp / "data"
    generate_sources(data, tenants=TENANTS, scale=scale, seed=7, with_defects=with_defects)
    return start_sandbox(data)


def secret_for(sb: RunningSandbox, tenant: str, source: str, *, expired: bool = False) -> str:
    """What the tenant stores for the source: GA4 keeps its property id beside the token."""
    token = sb.tenant_token(tenant, source, expired=expired)
    if source == "ga4":
        property_id = sb.credential(tenant, "ga4")["property_id"]
        return json.dumps({"access_token": token, "property_id": property_id})
    return token


def ingest(settings: Settings, sb: RunningSandbox, source: str, tenant: str = "acme", **kw):
    kw.setdefault("policy", FAST)
    kw.setdefault("page_size", PAGE)
    if source == "sp_api":  # its token endpoint is a setting of its own, not the base URL
        settings = settings.model_copy(update={"lwa_token_url": sb.env()["BIZOS_LWA_TOKEN_URL"]})
    return run_source(
        settings,
        tenant_id=tenant,
        source=source,
        secret=secret_for(sb, tenant, source),
        base_url=sb.base_url(source),
        **kw,
    )


def lake_ids(settings: Settings, source: str, table: str, tenant: str = "acme") -> list[str]:
    spec = SOURCES[source].tables[table]
    landed = read_table(settings, spec.source, spec.name, tenant)
    return [] if landed is None else landed.column("id").to_pylist()


def _h(one: str) -> int:
    return int.from_bytes(hashlib.sha256(one.encode()).digest()[:8], "big")


def expected(truth: GroundTruth, source: str, table: str, tenant: str, *, minus=()) -> tuple:
    """(count, checksum) of the truth, less the ids in ``minus``."""
    t = truth.table(tenant, f"{source}.{table}")
    removed = set(minus)
    checksum = (int(t.id_checksum, 16) - sum(_h(i) for i in removed)) & 0xFFFFFFFFFFFFFFFF
    return t.count - len(removed), f"{checksum:016x}"


def assert_truth(settings, sb, source, table, tenant="acme", *, minus=()) -> None:
    ids = lake_ids(settings, source, table, tenant)
    assert len(ids) == len(set(ids)), f"{source}.{table}: duplicate ids in the lake"
    got = (len(ids), id_checksum(ids))
    want = expected(sb.ground_truth, source, table, tenant, minus=minus)
    assert got == want, f"{source}.{table} of {tenant}: lake {got} != truth {want}"


def assert_source_truth(settings, sb, source, tenant="acme") -> None:
    for table in SOURCES[source].tables:
        assert_truth(settings, sb, source, table, tenant)


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _no_faults(sandbox):
    sandbox.clear_faults()
    yield
    sandbox.clear_faults()


# -- full and incremental --------------------------------------------------------------


@pytest.mark.parametrize("source", TIMED)
def test_full_then_incremental_load_equals_ground_truth(settings, sandbox, source):
    for tenant in TENANTS:
        results = ingest(settings, sandbox, source, tenant)
        assert [r.table for r in results] == list(SOURCES[source].tables)
        assert all(r.status == "success" and r.rows_quarantined == 0 for r in results)
        assert_source_truth(settings, sandbox, source, tenant)
        for r in results:
            count = sandbox.ground_truth.table(tenant, f"{source}.{r.table}").count
            assert r.rows_added == count
            assert r.cursor_after is not None and r.cursor_after["window"] is None

    # The second run reads from the cursor: nothing new lands, few records are re-read.
    sandbox.reset_log()
    again = ingest(settings, sandbox, source, "acme")
    assert [r.rows_added for r in again] == [0] * len(again)
    for r in again:
        total = sandbox.ground_truth.table("acme", f"{source}.{r.table}").count
        assert r.rows_in < max(total // 4, PAGE + 1), f"{r.table}: re-read {r.rows_in} of {total}"
    assert_source_truth(settings, sandbox, source, "acme")

    # What dbt will do: read every partition at once, schemas unioned by name.
    for table, spec in SOURCES[source].tables.items():
        folder = table_dir(settings, spec.source, spec.name, "acme")
        (count,) = duckdb.sql(
            f"SELECT count(DISTINCT id) FROM read_parquet('{folder}/month=*/part.parquet',"
            " union_by_name=true, hive_partitioning=true)"
        ).fetchone() or (0,)
        assert count == sandbox.ground_truth.table("acme", f"{source}.{table}").count

    log = read_load_log(settings, "acme", source=source)
    assert len(log) == 2 * len(SOURCES[source].tables)
    assert {row.status for row in log} == {"success"}


# The cursor each source keeps, at a given moment: used to wind a loaded table back.
def _mark(source: str, at: datetime) -> object:
    return {
        "stripe": int(at.timestamp()),
        "crm_api": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "saleor": at.isoformat(timespec="microseconds"),
        "cms_forms": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ai_usage": int(at.timestamp()),
        "ga4": at.date().isoformat(),
    }[source]


@pytest.mark.parametrize("source", TIMED)
def test_incremental_picks_up_only_records_after_the_cursor(settings, sandbox, source):
    """As if the last run happened on 1 Oct: the lake holds what was created before, the
    cursor says 1 Oct; the next run must read only what came later and end complete."""
    ingest(settings, sandbox, source)
    cut = datetime(2026, 10, 1, tzinfo=UTC)
    store = connector_state(settings)
    removed: dict[str, int] = {}
    for table, spec in SOURCES[source].tables.items():
        before = len(lake_ids(settings, source, table))
        # The cut is a month's first day: whole month partitions go.
        for month_dir in table_dir(settings, spec.source, spec.name, "acme").glob("month=*"):
            if month_dir.name.removeprefix("month=") >= cut.strftime("%Y-%m"):
                shutil.rmtree(month_dir)
        store.put_cursor(
            tenant_id="acme",
            source=source,
            table=table,
            cursor={"high_water": _mark(source, cut), "window": None},
        )
        removed[table] = before - len(lake_ids(settings, source, table))
    results = ingest(settings, sandbox, source)
    assert_source_truth(settings, sandbox, source)
    partial = 0
    for r in results:
        total = sandbox.ground_truth.table("acme", f"{source}.{r.table}").count
        assert r.rows_added == removed[r.table], r.table
        assert r.rows_in <= total
        partial += r.rows_in < total
    assert sum(removed.values()) > 0 and partial > 0


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", TIMED)
def test_faults_are_retried_and_the_load_still_equals_ground_truth(settings, sandbox, source):
    sandbox.inject(source, "429", count=3, retry_after=0.2)
    sandbox.inject(source, "500", count=2, after=3)
    sandbox.inject(source, "drop", count=1, after=6)
    sandbox.inject(source, "malformed", count=2, after=8)
    sandbox.inject(source, "503", count=1, after=11, retry_after=0)
    sandbox.inject(source, "slow", count=1, after=13, delay=1.0)
    policy = RequestPolicy(
        connect_timeout=2, read_timeout=0.5, backoff_base=0.001, backoff_max=0.01
    )
    started = time.monotonic()
    results = ingest(settings, sandbox, source, policy=policy, page_size=10)
    elapsed = time.monotonic() - started
    fired = {f["kind"]: f["fired"] for f in sandbox.faults}
    assert fired == {"429": 3, "500": 2, "drop": 1, "malformed": 2, "503": 1, "slow": 1}
    assert elapsed >= 3 * 0.2, "Retry-After was not honoured"
    assert all(r.status == "success" for r in results)
    assert_source_truth(settings, sandbox, source)


# -- killed mid-paging, then resumed ---------------------------------------------------


class Killed(Exception):
    """Stands for the process dying: nothing after it runs, nothing is flushed."""


def _kill_after(pages: int):
    def progress(p: PageProgress) -> None:
        if p.pages >= pages:
            raise Killed(f"killed after page {p.pages}")

    return progress


@pytest.mark.parametrize(("source", "table"), TABLES)
def test_run_killed_mid_paging_resumes_without_gap_or_duplicate(
    settings, tmp_path, sandbox, source, table
):
    total = sandbox.ground_truth.table("acme", f"{source}.{table}").count
    page = max(2, min(20, total // 5))  # at least five pages, however small the table
    # Flush every 2 pages, die after the 3rd: 2 pages are in the lake, 1 is lost in memory.
    with pytest.raises(Killed):
        ingest(settings, sandbox, source, tables=[table], page_size=page,
               batch_size=2 * page - 1, progress=_kill_after(3))  # fmt: skip
    cursor = read_cursor(settings, tenant_id="acme", source=source, table=table)
    assert cursor is not None and cursor["window"] is not None, "the window was not saved"
    landed = len(lake_ids(settings, source, table))
    assert 0 < landed < total

    (resumed,) = ingest(settings, sandbox, source, tables=[table], page_size=page)
    assert resumed.status == "success"
    assert_truth(settings, sandbox, source, table)
    # It resumed from the checkpoint: it read less than a load from scratch does.
    scratch = get_settings(home=tmp_path / "scratch", database_url=None)
    (full,) = ingest(scratch, sandbox, source, tables=[table], page_size=page)
    assert resumed.rows_in < full.rows_in
    (failed, ok) = sorted(read_load_log(settings, "acme"), key=lambda r: r.started_at)
    assert failed.status == "failed" and "Killed" in (failed.error or "")
    assert ok.status == "success" and ok.cursor_before == failed.cursor_after


@pytest.mark.parametrize("source", TIMED)
def test_retries_exhausted_keeps_what_was_read_and_the_next_run_completes(
    settings, sandbox, source
):
    table = max(
        SOURCES[source].tables,
        key=lambda t: sandbox.ground_truth.table("acme", f"{source}.{t}").count,
    )
    sandbox.inject(source, "503", count=0, after=3, retry_after=0)
    with pytest.raises(SourceUnavailable) as err:
        ingest(settings, sandbox, source, tables=[table], page_size=20)
    assert "acme" in str(err.value) and source in str(err.value)
    # The three good pages were landed and checkpointed before the error was raised.
    assert len(lake_ids(settings, source, table)) >= 2 * 20
    sandbox.clear_faults()
    (result,) = ingest(settings, sandbox, source, tables=[table])
    assert result.status == "success"
    assert_truth(settings, sandbox, source, table)
