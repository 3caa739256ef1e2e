"""Data-quality gates as ops rely on them: a bad batch stops at its blocking check
and the published scores stay as they were, a good batch after it publishes,
every result is kept with its observed value, and a source not loaded within its
window shows as stale in ``ops.check_results`` and ``GET /v1/ops/freshness``.

The batches are CRM exports in the tenant's inbox on the embedded target, one home
for the module: the good one runs as `bizos run` runs it (pipelines.runner: the
whole job, real Dagster, real dbt), the bad ones run the same job limited to what
the export feeds, and only the good one reaches dbt. The freshness case loads a
real source from the sandbox over HTTP and runs the freshness job.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, Definitions
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assets.quality_checks import (
    SOURCE_TABLES,
    freshness_records,
    source_table_records,
    tenant_groups,
)
from connectors.sources import SOURCES
from core.contracts.serving_tables import SERVING_TABLES
from core.settings import Settings
from pipelines.definitions import build_definitions
from pipelines.runner import QUIET_RUN_CONFIG, dagster_instance, failure_summary, run_tenants
from quality import expectations
from quality.expectations import run_suite
from quality.frames import non_null_columns, to_pandas
from quality.gates import (
    Link,
    mart_expectations,
    mart_expectations_by_tenant,
    referential_integrity,
    row_count_change,
    validate_source_chunks,
)
from quality.results import CheckRecord, latest_results, record_results, results_of_run
from quality.source_suites import checked_columns, source_rules
from sandbox.crm_export import generate_crm_export
from sandbox.generator import generate_sources
from sandbox.server.running import RunningSandbox, start_sandbox
from serving.api_role import create_api_role
from serving.keys import create_key
from serving.main import create_app
from serving.queries import top_lead_scores
from serving.store import NothingPublished
from tests.runs import GOOD_LEADS, LEADS, tenant_log
from tests.test_connector_sources import ingest

TENANT = "t-gate"
pytestmark = pytest.mark.timeout(1500)


def export_path(settings: Settings) -> Path:
    return settings.inbox_dir / TENANT / "crm" / "leads_export.csv"


def settle(path: Path) -> None:
    """An export touched in the last seconds is skipped as still uploading."""
    past = time.time() - 3600
    os.utime(path, (past, past))


def rewrite_export(settings: Settings, keep: int, *, no_key: int = 0, bad_time: int = 0) -> None:
    """Rewrite the tenant's export: its first ``keep`` rows, then ``no_key`` rows
    without a lead id and ``bad_time`` rows whose created_at is not a time."""
    path = export_path(settings)
    with path.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    created, lead_id = header.index("created_at"), header.index("lead_id")
    broken = []
    for n, row in enumerate(rows[keep : keep + no_key + bad_time]):
        row = list(row)
        if n < no_key:
            row[lead_id] = ""
        else:
            row[created] = "last tuesday"
        broken.append(row)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows[:keep], *broken])
    settle(path)


def run(settings: Settings, defs: Definitions, instance: DagsterInstance) -> tuple[int, str]:
    """One tenant run as `bizos run --tenant` makes it (pipelines.runner), in this
    process: the run's error summary and the tail of its log."""
    (result,) = run_tenants(
        defs, settings, instance, tenant_ids=[TENANT], log_dir=settings.home / "logs"
    )
    return (0 if result.success else 1), (result.error or "") + tenant_log(settings, TENANT)


def run_export_path(
    settings: Settings, defs: Definitions, instance: DagsterInstance
) -> tuple[int, str]:
    """The same job for the tenant, limited to the CRM export and everything it feeds
    (raw copy, dbt, lead model, publish): what a new export changes. The sources it
    does not feed are left out only to keep the test short."""
    job = defs.resolve_job_def("materialize_all")
    fed = AssetSelection.assets(AssetKey(["crm_export", "leads"])).downstream()
    result = job.execute_in_process(
        partition_key=TENANT,
        instance=instance,
        asset_selection=list(fed.resolve(defs.resolve_asset_graph())),
        raise_on_error=False,
        run_config=QUIET_RUN_CONFIG,
    )
    error = "" if result.success else failure_summary(result.all_events)
    return (0 if result.success else 1), error


def served(settings: Settings) -> list[tuple[str, int, str]] | None:
    """The tenant's served scores (lead, score, publish time); None before any publish."""
    try:
        rows = top_lead_scores(settings, TENANT, 100)
    except NothingPublished:
        return None
    return sorted((r["lead_id"], r["score"], str(r["published_at"])) for r in rows)


def kept(settings: Settings) -> dict[tuple[str, str], CheckRecord]:
    """The results the tenant's latest run kept, by (asset, check): that run is the
    one of the latest export check, which every run evaluates."""
    (latest,) = latest_results(settings, tenant_id=TENANT, asset_keys=["crm_export/leads"])[:1] or [
        None
    ]
    assert latest is not None and latest.run_id, "no check result kept"
    results = results_of_run(settings, run_id=latest.run_id)
    return {(r.asset_key, r.check_name): r for r in results}


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three runs of one tenant on one home; only the good one reaches dbt:
    a first export with 10 of its 30 rows unreadable (wrong type, no key), the
    corrected export, then an export truncated to 3 of its leads."""
    settings = Settings(home=tmp_path_factory.mktemp("gates"), database_url=None)
    out: dict[str, Any] = {"settings": settings}
    with pytest.MonkeyPatch.context() as env:
        env.delenv("DAGSTER_HOME", raising=False)  # dagster_instance sets it; undone after
        instance = dagster_instance(settings)
        instance.add_dynamic_partitions("tenants", [TENANT])  # as `bizos run` does
        defs = build_definitions(settings)
        generate_crm_export(settings.inbox_dir, TENANT, leads=LEADS, seed=20)
        rewrite_export(settings, 20, no_key=4, bad_time=6)
        out["unreadable"] = (
            *run_export_path(settings, defs, instance),
            served(settings),
            kept(settings),
        )
        generate_crm_export(settings.inbox_dir, TENANT, leads=LEADS, seed=20)
        settle(export_path(settings))
        out["good"] = (*run(settings, defs, instance), served(settings), kept(settings))
        rewrite_export(settings, 3)
        out["truncated"] = (
            *run_export_path(settings, defs, instance),
            served(settings),
            kept(settings),
        )
        instance.dispose()
    return out


def test_wrong_types_and_null_keys_fail_the_blocking_check_and_nothing_is_published(batches):
    code, out, scores, results = batches["unreadable"]
    assert code == 1, out
    assert "blocking asset check" in out
    assert scores is None  # dbt and publish never ran
    suite = results[("crm_export/leads", "crm_export_leads_expectations")]
    assert (suite.passed, suite.blocking, suite.severity) == (False, True, "ERROR")
    assert suite.observed_value == "0 expectations failed; 10 of 30 rows quarantined"
    # Nothing downstream of the lake ran: no mart or staging check in that run.
    assert {asset for asset, _ in results} <= {"crm_export/leads", *_source_keys()}


def test_a_good_batch_after_it_publishes(batches):
    code, out, scores, _ = batches["good"]
    assert code == 0, out
    assert scores is not None and len(scores) == GOOD_LEADS


def test_a_90_percent_drop_fails_the_blocking_check_and_leaves_the_scores(batches):
    code, out, scores, results = batches["truncated"]
    assert code == 1, out
    assert scores == batches["good"][2]  # not one score, not even its publish time
    drop = results[("crm_export/leads", "row_count_change")]
    assert (drop.passed, drop.blocking, drop.severity) == (False, True, "ERROR")
    assert drop.observed_value == "3"
    assert drop.details["previous_passing_rows"] == GOOD_LEADS
    assert drop.details["drop"] == round((GOOD_LEADS - 3) / GOOD_LEADS, 4)


def test_every_check_of_the_good_run_is_kept_with_its_observed_value(batches):
    results = batches["good"][3]
    assert results[("crm_export/leads", "row_count_change")].observed_value == str(GOOD_LEADS)
    scores = results[("mart_lead_scores", "expectations")]
    assert scores.passed and scores.blocking
    assert scores.observed_value == f"0 of {_expectations(scores)} expectations failed on 29 rows"
    assert ("stg_stripe__charges", "referential_integrity__customer_id") in results
    assert results[("stripe/charges", "freshness")].observed_value == "not_connected"
    assert results[("stripe/charges", "expectations")].passed
    # dbt's own tests, from the build's run_results.json, beside the GX checks.
    dbt_test = results[("mart_lead_scores", "not_null_mart_lead_scores_lead_id")]
    assert dbt_test.passed and dbt_test.observed_value == "pass: 0 failing rows"
    assert {r.tenant_id for r in results.values()} == {TENANT}
    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]


def _expectations(record: CheckRecord) -> int:
    return int(str(record.observed_value).split(" of ")[1].split()[0])


def _source_keys() -> set[str]:
    return {f"{s}/{t}" for s, d in SOURCES.items() for t in d.tables}


def test_a_source_suite_catches_wrong_types_null_keys_and_unknown_statuses():
    """The suite a TableSpec gives, on rows landing would never write: it is there for
    the day a file lands some other way."""
    spec = SOURCES["stripe"].tables["charges"]
    rows = pa.table(
        {
            "tenant_id": ["t1", "t1", "t1", "t2"],
            "id": ["ch_1", None, "ch_1", "ch_4"],
            "created": ["1700000000", "1700000001", "1700000002", "1700000003"],
            "amount": pa.array([100, -5, 300, 400], pa.int64()),
            "currency": ["usd", "usd", "USD", "eur"],
            "status": ["succeeded", "refunded", "failed", "pending"],
        }
    )
    # As the check reads a lake table: every declared column, null where never sent.
    for name in checked_columns(spec).names:
        if name not in rows.column_names:
            rows = rows.append_column(name, pa.nulls(rows.num_rows, spec.columns[name]))
    rules = source_rules(spec, tenant_id="t1", typed=non_null_columns(rows))
    outcome = run_suite("test.stripe.charges", rules, to_pandas(rows))
    failed = {e["expectation"]: e for e in outcome.expectations if not e["success"]}
    assert set(failed) == {
        "tenant_id: expect_column_values_to_be_in_set",
        "id: expect_column_values_to_not_be_null",
        "id: expect_column_values_to_be_unique",
        "created: expect_column_values_to_be_in_type_list",
        "amount: expect_column_values_to_be_between",
        "currency: expect_column_values_to_match_regex",
        "status: expect_column_values_to_be_in_set",
    }
    assert failed["created: expect_column_values_to_be_in_type_list"]["observed_value"] == "str"
    assert failed["status: expect_column_values_to_be_in_set"]["examples"] == ["refunded"]
    # The suite is built once per process; the tenant is a parameter given at each
    # validation, so another tenant's check builds nothing and its verdict follows
    # its own tenant, not the first one's.
    built = expectations._prepared["test.stripe.charges"]
    again = run_suite(
        "test.stripe.charges",
        source_rules(spec, tenant_id="t2", typed=non_null_columns(rows)),
        to_pandas(rows),
    )
    assert expectations._prepared["test.stripe.charges"] is built
    (tenant_rule,) = [e for e in again.expectations if e["expectation"].startswith("tenant_id")]
    assert tenant_rule["unexpected_count"] == 3


def test_a_table_checked_in_chunks_gets_the_verdict_of_it_checked_whole():
    """A table larger than BIZOS_QUALITY_CHECK_CHUNK_ROWS is validated a chunk at a
    time (bounded memory): every failing expectation and its count of unexpected rows
    are those of the whole table, a key repeated across two chunks included."""
    spec = SOURCES["stripe"].tables["charges"]
    n = 23
    rows = pa.table(
        {
            "tenant_id": ["t1"] * (n - 1) + ["t2"],
            "id": [f"ch_{i}" for i in range(n - 3)] + ["ch_0", None, "ch_5"],  # 0 and 5 twice
            "created": pa.array(range(1_700_000_000, 1_700_000_000 + n), pa.int64()),
            "amount": pa.array([100] * (n - 2) + [-5, 7], pa.int64()),
            "currency": ["usd"] * 10 + ["USD"] + ["usd"] * (n - 11),
            "status": ["succeeded"] * (n - 1) + ["refunded"],
        }
    )
    for name in checked_columns(spec).names:
        if name not in rows.column_names:
            rows = rows.append_column(name, pa.nulls(rows.num_rows, spec.columns[name]))
    rows = rows.select(checked_columns(spec).names)

    def verdict(chunk_rows: int) -> tuple[bool, int, int, dict[str, int]]:
        chunks = [pa.Table.from_batches([b]) for b in rows.to_batches(max_chunksize=chunk_rows)]
        outcome, checked, expectations = validate_source_chunks(
            spec, chunks, tenant_id="t1", keys=lambda columns: rows.select(list(columns))
        )
        failed = {e["expectation"]: e["unexpected_count"] for e in outcome.expectations}
        failed = {k: v for k, v in failed.items() if v or not _passed(outcome, k)}
        return outcome.success, checked, expectations, failed

    whole = verdict(n)
    assert whole[0] is False and whole[1] == n
    assert whole[3] == {
        "tenant_id: expect_column_values_to_be_in_set": 1,
        "id: expect_column_values_to_not_be_null": 1,
        "id: expect_column_values_to_be_unique": 4,
        "amount: expect_column_values_to_be_between": 1,
        "currency: expect_column_values_to_match_regex": 1,
        "status: expect_column_values_to_be_in_set": 1,
    }
    for chunk_rows in (1, 4, 10, 22):
        assert verdict(chunk_rows) == whole, chunk_rows


def test_referential_integrity_counts_each_tenants_orphans_against_its_own_parents():
    """The parents' keys are the suite's parameter: one suite for every tenant, each
    check against its own parent rows (two tenants in a row, in one process)."""
    link = Link("stg_stripe__charges", "customer_id", "stg_stripe__customers", "customer_id")
    children = pa.table({"customer_id": ["c1", "c2", "c3", None]})
    verdicts = [
        referential_integrity(
            link, children, pa.table({"customer_id": parents}), tenant_id=t, run_id=None
        )
        for t, parents in (("t1", ["c1", "c2", "c3"]), ("t2", ["c1"]), ("t3", []))
    ]
    assert [(v.passed, v.details["orphans"], v.details["examples"]) for v in verdicts] == [
        (True, 0, []),
        (False, 2, ["c2", "c3"]),
        (False, 3, ["c1", "c2", "c3"]),
    ]
    assert verdicts[1].observed_value == "2 of 3 customer_id not in stg_stripe__customers"


def _passed(outcome: Any, expectation: str) -> bool:
    return all(e["success"] for e in outcome.expectations if e["expectation"] == expectation)


# -- freshness ------------------------------------------------------------------------

FORMS = "t-forms"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    data = tmp_path_factory.mktemp("fresh") / "data"
    generate_sources(data, tenants=[FORMS], scale=0.05, seed=7)
    with start_sandbox(data) as sb:
        yield sb


def check_freshness(settings: Settings) -> None:
    job = build_definitions(settings).resolve_job_def("check_freshness")
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(), tags={"bizos/tenant": FORMS}
    )
    assert result.success


def freshness_api(settings: Settings) -> dict[str, dict]:
    key = create_key(settings, FORMS)
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/ops/freshness", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == FORMS
    return {s["source"]: s for s in body["sources"]}


def test_a_source_not_loaded_within_its_window_is_stale(settings, sandbox, monkeypatch):
    monkeypatch.setenv("BIZOS_HOME", str(settings.home))
    monkeypatch.setenv("BIZOS_DATABASE_URL", "")
    ingest(settings, sandbox, "cms_forms", tenant=FORMS)

    check_freshness(settings)
    (fresh,) = latest_results(settings, tenant_id=FORMS, asset_keys=["cms_forms/submissions"])
    assert (fresh.check_name, fresh.passed) == ("freshness", True)
    assert fresh.observed_value.startswith("fresh: last successful load ")  # type: ignore[union-attr]
    shown = freshness_api(settings)
    assert shown["cms_forms"]["status"] == "fresh" and shown["cms_forms"]["window_hours"] == 26
    assert shown["stripe"]["status"] == "not_connected"

    # The same load, a window it no longer fits in: an hourly source that missed a run.
    monkeypatch.setenv("BIZOS_FRESHNESS_HOURS", json.dumps({"cms_forms": 0.0002}))
    time.sleep(1.0)
    stale_settings = Settings(home=settings.home, database_url=None)
    check_freshness(stale_settings)
    (stale,) = latest_results(settings, tenant_id=FORMS, asset_keys=["cms_forms/submissions"])
    assert (stale.passed, stale.blocking, stale.severity) == (False, False, "WARN")
    assert stale.observed_value.startswith("stale: last successful load ")  # type: ignore[union-attr]
    assert stale.details["window_hours"] == 0.0002
    shown = freshness_api(stale_settings)
    forms = shown["cms_forms"]
    assert forms["status"] == "stale" and forms["last_successful_load"] is not None
    (table,) = forms["tables"]
    assert table["status"] == "stale"
    assert {c["check_name"]: c["passed"] for c in table["checks"]} == {"freshness": False}


def test_freshness_needs_a_key_and_shows_only_the_callers_tenant(settings, sandbox, monkeypatch):
    monkeypatch.setenv("BIZOS_HOME", str(settings.home))
    ingest(settings, sandbox, "cms_forms", tenant=FORMS)
    other = create_key(settings, "t-other")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/ops/freshness").status_code == 401
        denied = client.get(
            "/v1/ops/freshness",
            headers={"X-API-Key": create_key(settings, FORMS, scopes="reviews:write")},
        )
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
        theirs = client.get("/v1/ops/freshness", headers={"X-API-Key": other}).json()
    assert theirs["tenant_id"] == "t-other"
    assert {s["status"] for s in theirs["sources"]} == {"not_connected"}


def lead_score_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` of the lead scores mart, every other column filled with a plausible
    value of its type, as the warehouse hands them back (nothing there enforces the
    contract's not-nulls)."""
    contract = SERVING_TABLES["lead_scores"]
    sample = {pa.string(): "x", pa.int32(): 1, pa.float64(): 0.5, pa.bool_(): False}
    good: dict[str, object] = {
        f.name: sample.get(f.type, datetime(2026, 1, 1, tzinfo=UTC)) for f in contract.schema
    }
    good |= {"email": "a@b.co", "score_model": "rules_v0"}
    schema = pa.schema([f.with_nullable(True) for f in contract.schema])
    return pa.Table.from_pylist([good | row for row in rows], schema=schema)


def test_a_mart_suite_catches_scores_out_of_range_and_duplicate_leads():
    """What a model change could produce and the API must never serve."""
    contract = SERVING_TABLES["lead_scores"]
    table = lead_score_rows(
        [
            {"tenant_id": "t1", "lead_id": "L1", "score": 80, "grade": "A"},
            {"tenant_id": "t1", "lead_id": "L1", "score": 150, "grade": "E"},
            {"tenant_id": "t1", "lead_id": "L3", "score": 20, "grade": "D", "email": None},
        ]
    )
    record = mart_expectations(contract, table, tenant_id="t1", run_id=None)
    assert (record.passed, record.blocking, record.asset_key) == (False, True, contract.mart)
    failed = {e["expectation"] for e in record.details["failed_expectations"]}
    assert failed == {
        "lead_id: expect_column_values_to_be_unique",
        "score: expect_column_values_to_be_between",
        "grade: expect_column_values_to_be_in_set",
        "email: expect_column_values_to_not_be_null",
    }


def test_a_batch_mart_check_blames_each_failing_row_on_its_own_tenant():
    """A batch checks a mart for all its tenants in one GX validation
    (``mart_expectations_by_tenant``): one verdict per tenant, as if each were
    checked alone. The same lead id in two tenants is no duplicate; a bad score
    fails only its tenant; a tenant with no rows passes."""
    contract = SERVING_TABLES["lead_scores"]
    table = lead_score_rows(
        [
            {"tenant_id": "t1", "lead_id": "L1", "score": 80, "grade": "A"},
            {"tenant_id": "t1", "lead_id": "L2", "score": 40, "grade": "C"},
            {"tenant_id": "t2", "lead_id": "L1", "score": 150, "grade": "A"},
            {"tenant_id": "t2", "lead_id": "L2", "score": 30, "grade": "D"},
            {"tenant_id": "t2", "lead_id": "L2", "score": 130, "grade": "D"},
        ]
    )
    records = mart_expectations_by_tenant(
        contract, table, tenant_ids=["t1", "t2", "t3"], run_id="batch-x"
    )
    verdicts = {r.tenant_id: r for r in records}
    assert [r.tenant_id for r in records] == ["t1", "t2", "t3"]
    assert verdicts["t1"].passed and verdicts["t3"].passed
    assert (
        verdicts["t1"].details["rows_checked"] == 2 and verdicts["t3"].details["rows_checked"] == 0
    )
    bad = verdicts["t2"]
    assert not bad.passed and bad.run_id == "batch-x" and bad.details["rows_checked"] == 3
    failed = {e["expectation"]: e for e in bad.details["failed_expectations"]}
    assert set(failed) == {
        "score: expect_column_values_to_be_between",
        "expect_compound_columns_to_be_unique",
    }
    assert failed["score: expect_column_values_to_be_between"]["unexpected_count"] == 2
    assert sorted(failed["score: expect_column_values_to_be_between"]["examples"]) == [
        "130",
        "150",
    ]
    # Alone, t2's rows fail the same way.
    alone = mart_expectations(contract, table.slice(2), tenant_id="t2", run_id=None)
    assert not alone.passed
    assert {e["expectation"] for e in alone.details["failed_expectations"]} == {
        "score: expect_column_values_to_be_between",
        "lead_id: expect_column_values_to_be_unique",
    }

    # A row of a tenant outside the batch means the read is wrong: every tenant fails.
    [only] = mart_expectations_by_tenant(contract, table, tenant_ids=["t1"], run_id=None)
    assert not only.passed
    assert "tenant_id: expect_column_values_to_be_in_set" in {
        e["expectation"] for e in only.details["failed_expectations"]
    }


def test_a_batch_checks_its_marts_in_groups_of_bounded_rows():
    """``batch_mart_records`` hands GX at most ``max_rows`` rows at once (its pandas
    frame is what costs memory); a tenant larger than that is a group of its own."""
    rows = {"a": 40, "b": 70, "c": 250, "d": 10, "e": 0}
    groups = list(tenant_groups(list(rows), rows, max_rows=100))
    assert groups == [["a"], ["b"], ["c"], ["d", "e"]]
    assert [t for g in groups for t in g] == list(rows)
    assert list(tenant_groups(["a", "b"], {}, max_rows=100)) == [["a", "b"]]


def test_row_count_change_compares_with_the_last_passing_count(pg_settings):
    """On Postgres (the ops schema of production): a failing count never becomes the
    baseline, so two truncated loads in a row both fail."""
    asset = "stripe/charges"

    def check(rows: int) -> CheckRecord:
        record = row_count_change(
            pg_settings, asset_key=asset, tenant_id="t1", rows=rows, run_id="r"
        )
        record_results(pg_settings, [record])
        return record

    assert check(100).passed  # nothing to compare with yet
    assert check(60).passed  # a 40% fall is within the default 50%
    dropped = check(20)
    assert not dropped.passed and dropped.details["previous_passing_rows"] == 60
    assert not check(25).passed  # still measured against 60, not the failed 20
    assert check(70).passed
    (latest,) = latest_results(pg_settings, tenant_id="t1", asset_keys=[asset])
    assert (latest.observed_value, latest.passed) == ("70", True)
    assert latest_results(pg_settings, tenant_id="t2") == []


def test_every_source_suite_passes_on_what_the_providers_send(settings, sandbox):
    """The enums and ranges are the providers' documented ones: what the sandbox
    serves in their shapes (defects included: landing quarantines those) passes."""
    for source in SOURCES:
        ingest(settings, sandbox, source, tenant=FORMS, run_id="run-1")
    selected = {
        AssetCheckKey(key, name)
        for key in SOURCE_TABLES
        for name in ("expectations", "row_count_change")
    }
    records = source_table_records(settings, FORMS, run_id="run-1", selected=selected)
    assert len(records) == 2 * len(SOURCE_TABLES)
    assert [r for r in records if not r.passed] == []
    charges = next(
        r for r in records if (r.asset_key, r.check_name) == ("stripe/charges", "expectations")
    )
    assert charges.details["rows_checked"] > 0 and charges.details["batch_rows_in"] > 0
    assert charges.details["expectations"] >= 15
    # Read and checked in chunks of 7 rows from the lake: the same verdicts and counts.
    chunked = source_table_records(
        settings.model_copy(update={"quality_check_chunk_rows": 7}),
        FORMS,
        run_id="run-1",
        selected=selected,
    )
    assert [(r.asset_key, r.check_name, r.passed, r.observed_value) for r in chunked] == [
        (r.asset_key, r.check_name, r.passed, r.observed_value) for r in records
    ]
    assert {r.asset_key: r.details.get("rows_checked") for r in chunked} == {
        r.asset_key: r.details.get("rows_checked") for r in records
    }


def test_on_postgres_the_api_reads_freshness_as_its_own_role(pg_settings, sandbox):
    """The API's role reads the ops tables only through the key-checking functions:
    the caller's tenant, its sources' loads and its latest checks, nothing else."""
    ingest(pg_settings, sandbox, "cms_forms", tenant=FORMS)
    selected = {AssetCheckKey(key, "freshness") for key in SOURCE_TABLES}
    record_results(
        pg_settings, freshness_records(pg_settings, FORMS, run_id="r1", selected=selected)
    )
    role = "bizos_api_quality_" + os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = create_api_role(pg_settings, role)
    api = pg_settings.model_copy(update={"api_database_url": SecretStr(url)})
    mine, other = create_key(pg_settings, FORMS), create_key(pg_settings, "t-other")
    with TestClient(create_app(api)) as client:
        shown = client.get("/v1/ops/freshness", headers={"X-API-Key": mine}).json()
        theirs = client.get("/v1/ops/freshness", headers={"X-API-Key": other}).json()
    sources = {s["source"]: s for s in shown["sources"]}
    forms = sources["cms_forms"]
    assert forms["status"] == "fresh" and forms["last_successful_load"] is not None
    (table,) = forms["tables"]
    assert [(c["check_name"], c["passed"], c["run_id"]) for c in table["checks"]] == [
        ("freshness", True, "r1")
    ]
    assert sources["stripe"]["status"] == "not_connected"
    assert theirs["tenant_id"] == "t-other"
    assert {s["status"] for s in theirs["sources"]} == {"not_connected"}
    assert all(t["checks"] == [] for s in theirs["sources"] for t in s["tables"])
    # The role itself cannot read the tables: only through a key.
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM ops.check_results")
