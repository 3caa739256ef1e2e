"""What goes wrong, against the sandbox over real HTTP: records missing required
fields, new fields, malformed pages, bad and expired credentials, and that the
secret shows up nowhere. The load log is checked on both targets."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from connectors.http_client import (
    CredentialError,
    MalformedResponse,
    RequestPolicy,
    SourceUnavailable,
)
from connectors.ingest import run_source
from connectors.landing import read_quarantine, read_table
from connectors.sources import SOURCES
from connectors.state import connector_state, read_load_log
from core.settings import get_settings
from sandbox.server.running import RunningSandbox
from tests.test_connector_sources import (
    FAST,
    TENANTS,
    TIMED,
    assert_source_truth,
    assert_truth,
    ingest,
    lake_ids,
    start,
)

# Order lines are served inside their orders (Saleor has no root field for them),
# so the generator's broken copies of them never reach a client.
NOT_SERVED = {("saleor", "order_lines")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("clean")) as sb:
        yield sb


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Iterator[RunningSandbox]:
    """The same records, a documented few missing a required field or carrying a new one."""
    with start(tmp_path_factory.mktemp("broken"), with_defects=True) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _no_faults(clean):
    clean.clear_faults()
    yield
    clean.clear_faults()


def _defects(sb: RunningSandbox, source: str, table: str, kind: str) -> dict[str, set[str]]:
    """field -> ids of the records broken in that way."""
    truth = sb.ground_truth.table("acme", f"{source}.{table}")
    return {d["field"]: set(d["ids"]) for d in truth.defects.values() if d["kind"] == kind}


# -- quarantine and schema drift ---------------------------------------------------------


@pytest.mark.parametrize("source", TIMED)
def test_missing_fields_are_quarantined_new_fields_kept_and_earlier_data_intact(
    settings, tmp_path, clean, broken, source
):
    # A tenant that loaded clean data earlier: the broken versions must not replace it.
    ingest(settings, clean, source)
    assert_source_truth(settings, clean, source)
    results = ingest(settings, broken, source, full_refresh=True)
    assert all(r.status == "success" for r in results)
    assert_source_truth(settings, clean, source)

    # A tenant loading the broken data first: the bad records are in quarantine only.
    fresh = get_settings(home=tmp_path / "fresh", database_url=None)
    results = {r.table: r for r in ingest(fresh, broken, source)}
    seen_defect = False
    for table, spec in SOURCES[source].tables.items():
        missing = _defects(broken, source, table, "missing_field")
        drift = _defects(broken, source, table, "unknown_field")
        if (source, table) in NOT_SERVED:
            assert_truth(fresh, broken, source, table)
            continue
        bad_ids = set().union(*missing.values()) if missing else set()
        assert_truth(fresh, broken, source, table, minus=bad_ids)
        assert results[table].rows_quarantined == len(bad_ids)
        quarantine = read_quarantine(fresh, spec.source, spec.name, "acme")
        rows = [] if quarantine is None else quarantine.to_pylist()
        assert {json.loads(r["raw_record"]).get("id") for r in rows} == bad_ids
        for field, ids in missing.items():
            for row in rows:
                if json.loads(row["raw_record"]).get("id") in ids:
                    assert row["reason"] == f"missing required field(s): {field}"
                    assert row["tenant_id"] == "acme" and row["source"] == spec.source
                    assert row["source_file"].startswith(("GET /", "POST /"))
        landed = read_table(fresh, spec.source, spec.name, "acme")
        assert landed is not None
        for field, ids in drift.items():
            assert field in landed.column_names, f"{table}: new field {field} was dropped"
            by_id = dict(zip(landed["id"].to_pylist(), landed[field].to_pylist(), strict=True))
            assert all(json.loads(by_id[i])["introduced"] == "2026-10" for i in ids)
            raws = dict(zip(landed["id"].to_pylist(), landed["_raw"].to_pylist(), strict=True))
            assert all(field in json.loads(raws[i]) for i in ids)
        seen_defect = seen_defect or bool(missing) or bool(drift)
    # GA4 rows are built from the report's headers: no field of one can go missing.
    assert seen_defect or source == "ga4", f"the generator broke nothing in {source}"


# -- malformed pages ---------------------------------------------------------------------


@pytest.mark.parametrize("source", TIMED)
def test_malformed_pages_fail_clearly_after_retries_and_keep_earlier_data(settings, clean, source):
    ingest(settings, clean, source)
    clean.inject(source, "malformed", count=0)
    with pytest.raises(MalformedResponse) as err:
        ingest(settings, clean, source)
    message = str(err.value)
    assert source in message and "'acme'" in message and "3 times" in message
    assert "not JSON" in message
    assert_source_truth(settings, clean, source)
    failed = [r for r in read_load_log(settings, "acme") if r.status == "failed"]
    assert len(failed) == 1 and "MalformedResponse" in (failed[0].error or "")


# -- credentials -------------------------------------------------------------------------


def _everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


@pytest.mark.parametrize("source", TIMED)
@pytest.mark.parametrize("how", ["expired", "invalid"])
def test_bad_credentials_name_tenant_and_source_and_never_the_secret(
    settings, clean, source, how, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    bare = clean.tenant_token("acme", source, expired=how == "expired")
    if how == "invalid":
        bare = bare[:-6] + "XXXXXX"  # a revoked or mistyped key
    secret = bare
    if source == "ga4":
        property_id = clean.credential("acme", "ga4")["property_id"]
        secret = json.dumps({"access_token": bare, "property_id": property_id})
    with pytest.raises(CredentialError) as err:
        run_source(
            settings,
            tenant_id="acme",
            source=source,
            secret=secret,
            base_url=clean.base_url(source),
            policy=FAST,
        )
    said = _everything_said(err.value)
    assert "'acme'" in str(err.value) and source in str(err.value)
    assert "bizos credentials set --tenant acme --source " + source in str(err.value)
    assert bare not in said and secret not in said
    (row,) = read_load_log(settings, "acme")
    assert row.status == "failed" and "CredentialError" in (row.error or "")
    assert bare not in (row.error or "")
    out = capsys.readouterr()
    assert bare not in caplog.text and bare not in out.out and bare not in out.err
    assert lake_ids(settings, source, next(iter(SOURCES[source].tables))) == []


def test_ga4_token_without_access_to_the_property_is_a_credential_error(settings, clean):
    secret = json.dumps(
        {
            "access_token": clean.tenant_token("globex", "ga4"),
            "property_id": clean.credential("acme", "ga4")["property_id"],
        }
    )
    with pytest.raises(CredentialError, match="HTTP 403") as err:
        run_source(
            settings,
            tenant_id="acme",
            source="ga4",
            secret=secret,
            base_url=clean.base_url("ga4"),
            policy=FAST,
        )
    assert clean.tenant_token("globex", "ga4") not in _everything_said(err.value)


def test_a_credential_in_the_wrong_form_is_a_credential_error(settings, clean):
    with pytest.raises(CredentialError) as err:
        run_source(
            settings,
            tenant_id="acme",
            source="ga4",
            secret=clean.tenant_token("acme", "ga4"),  # no property id with it
            base_url=clean.base_url("ga4"),
            policy=FAST,
        )
    assert "property id" in str(err.value) and "'acme'" in str(err.value)
    with pytest.raises(CredentialError, match="not in the expected form"):
        run_source(
            settings,
            tenant_id="acme",
            source="stripe",
            secret='{"unexpected": "shape"}',
            base_url=clean.base_url("stripe"),
            policy=FAST,
        )


def test_the_secret_is_in_no_log_line_error_or_load_log_even_through_faults(
    settings, clean, caplog, capsys
):
    """Retries log warnings with the request; the secret must not be in any of them."""
    caplog.set_level(logging.DEBUG)
    for source in TIMED:
        clean.inject(source, "429", count=2, retry_after=0)
        clean.inject(source, "500", count=1, after=3)
        clean.inject(source, "malformed", count=1, after=5)
        clean.inject(source, "drop", count=1, after=7)
        ingest(settings, clean, source, page_size=20)
    clean.clear_faults()
    for source in TIMED:
        clean.inject(source, "503", count=0, retry_after=0)
        with pytest.raises(SourceUnavailable) as err:
            ingest(settings, clean, source, policy=RequestPolicy(max_attempts=2, backoff_base=0))
        said = _everything_said(err.value)
        for tenant in TENANTS:
            for expired in (False, True):
                assert clean.tenant_token(tenant, source, expired=expired) not in said
    assert "try 2 of" in caplog.text  # the retries were logged
    out = capsys.readouterr()
    logs = caplog.text + out.out + out.err
    rows = read_load_log(settings)
    assert rows and any(r.status == "failed" for r in rows)
    stored = json.dumps([r.__dict__ for r in rows], default=str)
    for source in TIMED:
        token = clean.tenant_token("acme", source)
        assert token not in logs and token not in stored


# -- the load log on both targets ----------------------------------------------------------


@pytest.mark.parametrize("target", ["embedded", "postgres"])
def test_load_log_rows_on_both_targets(target, request, clean):
    settings = request.getfixturevalue("settings" if target == "embedded" else "pg_settings")
    results = ingest(settings, clean, "crm_api", run_id="run-1")
    clean.inject("crm_api", "503", count=0, retry_after=0)
    with pytest.raises(SourceUnavailable):
        ingest(settings, clean, "crm_api", run_id="run-2", tables=["leads"])
    rows = read_load_log(settings, "acme")
    assert [r.run_id for r in rows] == ["run-2"] + ["run-1"] * len(results)
    failed, *ok = rows
    assert failed.status == "failed" and "SourceUnavailable" in (failed.error or "")
    assert failed.cursor_before == failed.cursor_after
    by_table = {r.table_name: r for r in ok}
    for result in results:
        row = by_table[result.table]
        count = clean.ground_truth.table("acme", f"crm_api.{result.table}").count
        assert (row.tenant_id, row.source, row.status) == ("acme", "crm_api", "success")
        assert row.rows_added == row.rows_loaded == count and row.rows_quarantined == 0
        assert row.rows_in >= count and row.bytes > 0 and row.duration_s >= 0
        assert row.cursor_before is None
        assert json.loads(row.cursor_after or "{}")["window"] is None
        assert row.started_at <= row.finished_at and row.error is None
    assert read_load_log(settings, "globex") == []


@pytest.mark.parametrize(("source", "key"), [("cms_forms", "cursor"), ("ai_usage", "page_token")])
def test_a_saved_cursor_the_provider_refuses_restarts_the_window(
    settings, clean, source, key, caplog
):
    """Opaque cursors expire; the window is read again from its start, nothing lost."""
    table = next(iter(SOURCES[source].tables))
    window = {"since": None, "max_submitted": None} if source == "cms_forms" else {
        "start": None, "end": 2_000_000_000,
    }  # fmt: skip
    connector_state(settings).put_cursor(
        tenant_id="acme",
        source=source,
        table=table,
        cursor={"high_water": None, "window": {**window, key: "bm90LW91cnM="}},
    )
    (result,) = ingest(settings, clean, source)
    assert result.status == "success" and "refused" in caplog.text
    assert_truth(settings, clean, source, table)


def test_ga4_property_id_may_come_from_options(settings, clean):
    (result,) = run_source(
        settings,
        tenant_id="acme",
        source="ga4",
        secret=clean.tenant_token("acme", "ga4"),
        base_url=clean.base_url("ga4"),
        options={"property_id": clean.credential("acme", "ga4")["property_id"]},
        policy=FAST,
    )
    assert result.status == "success"
    assert_truth(settings, clean, "ga4", "report_rows")
