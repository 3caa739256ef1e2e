"""The connector pieces that need no server: Retry-After, masking, merging with drift,
and the cursor/load-log store on both targets."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet
import pytest

from connectors.http_client import (
    MalformedPage,
    Masker,
    RequestPolicy,
    parse_retry_after,
)
from connectors.landing import (
    Fetched,
    TableSpec,
    check_record,
    concat_drifting,
    keep_latest,
    land_batch,
    quarantine_dir,
    read_quarantine,
    read_table,
    table_dir,
    version_of,
)
from connectors.sources import ai_usage, cms_forms, crm_api, ga4, saleor, stripe
from connectors.state import (
    LoadInProgress,
    LoadLogRow,
    connector_state,
    read_load_log,
)
from lake.files import write_partition

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = "Thu, 01 Oct 2026 12:00:30 GMT"
    assert parse_retry_after(later, now=NOW) == 30.0
    assert parse_retry_after("Thu, 01 Oct 2026 11:00:00 GMT", now=NOW) == 0.0


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling():
    import random

    policy = RequestPolicy(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1


def test_masker_hides_the_secret_in_every_encoding():
    secret = "sk_test_abc/def+ghi=="
    mask = Masker([secret, "ab"])  # too-short parts are not masked (they would eat the text)
    text = f'key {secret} url ?k=sk_test_abc%2Fdef%2Bghi%3D%3D json "{secret}"'
    out = mask(text)
    assert secret not in out and "sk_test_abc%2F" not in out
    assert out.count("***") == 3


SPEC = TableSpec(
    source="demo",
    name="things",
    date_field="created",
    date_format="epoch",
    required=("amount",),
    columns={"id": pa.string(), "created": pa.int64(), "amount": pa.int64()},
)
DAY1 = int(datetime(2026, 9, 1, 10, tzinfo=UTC).timestamp())


def test_tenant_ids_follow_the_platform_rule():
    from connectors.ingest import check_tenant_id

    with pytest.raises(ValueError, match="invalid tenant id"):
        check_tenant_id("../etc")


def test_check_record_names_what_is_wrong():
    assert check_record({"id": "a", "created": DAY1, "amount": 1}, SPEC)[1] is None
    assert "missing required field(s): amount" in str(check_record({"id": "a", "created": 1}, SPEC))
    assert "amount is not int64" in str(
        check_record({"id": "a", "created": DAY1, "amount": "1"}, SPEC)
    )
    assert "created is not a Unix time" in str(
        check_record({"id": "a", "created": 10**15, "amount": 1}, SPEC)
    )


def test_concat_widens_types_adds_columns_and_falls_back_to_text():
    a = pa.table({"id": ["1"], "n": [1], "x": [True]})
    b = pa.table({"id": ["2"], "n": [2.5], "x": ["yes"], "new": [{"k": 1}]})
    merged = concat_drifting([a, b])
    assert merged.schema.field("n").type == pa.float64()
    assert merged.schema.field("x").type == pa.string()
    assert merged.column("x").to_pylist() == ["true", "yes"]
    assert merged.column("new").to_pylist()[0] is None


def test_keep_latest_keeps_the_last_row_of_each_key():
    table = pa.table({"id": ["a", "b", "a", "c", "b"], "v": [1, 2, 3, 4, 5]})
    kept = keep_latest(table, ["id"])
    assert sorted(zip(kept["id"].to_pylist(), kept["v"].to_pylist(), strict=True)) == [
        ("a", 3),
        ("b", 5),
        ("c", 4),
    ]


def test_keep_latest_keeps_the_highest_version_nulls_lowest_ties_last_read():
    table = pa.table(
        {
            "id": ["a", "a", "b", "b", "c", "c", "d"],
            "_version": pa.array([9, 5, None, 1, 3, 3, None], type=pa.int64()),
            "n": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    kept = keep_latest(table, ["id"])
    assert kept.schema == table.schema
    assert dict(zip(kept["id"].to_pylist(), kept["n"].to_pylist(), strict=True)) == {
        "a": 1,  # version 9 beats a later-read 5
        "b": 4,  # any version beats null
        "c": 6,  # equal versions: the last read
        "d": 7,
    }


def test_same_second_changes_read_newest_first_keep_the_newest():
    """Stripe stamps events in whole seconds and lists them newest first: two changes
    to one charge in the same second must not let the older (read later) win."""
    seen: Counter = Counter()
    events = [  # newest first, as /v1/events lists them
        ({"created": 1_700_000_005}, {"id": "ch_1", "amount_refunded": 500}),
        ({"created": 1_700_000_005}, {"id": "ch_1", "amount_refunded": 200}),
        ({"created": 1_700_000_005}, {"id": "ch_2", "amount_refunded": 100}),
        ({"created": 1_700_000_004}, {"id": "ch_1", "amount_refunded": 0}),
    ]
    versions = [stripe.event_version(e, o, seen) for e, o in events]
    assert versions[0] > versions[1] > versions[3]
    assert versions[2] == versions[0]  # another object's first read of that second
    # A list read in the next second is newer than every change of the one before.
    assert version_of(1_700_000_006) > versions[0]
    table = pa.table(
        {
            "id": [o["id"] for _, o in events],
            "_version": pa.array(versions, type=pa.int64()),
            "amount_refunded": [o["amount_refunded"] for _, o in events],
        }
    )
    kept = keep_latest(table, ["id"]).to_pylist()
    assert {r["id"]: r["amount_refunded"] for r in kept} == {"ch_1": 500, "ch_2": 100}


def test_land_batch_merges_keeps_drift_and_quarantines(settings):
    def batch(*records):
        return [Fetched(r, "GET /things", n) for n, r in enumerate(records, 1)]

    first = land_batch(
        settings,
        SPEC,
        tenant_id="t1",
        batch=batch(
            {"id": "a", "created": DAY1, "amount": 1},
            {"id": "b", "created": DAY1 + 30 * 86_400, "amount": 2, "meta": {"k": [1]}},
            {"id": "c", "created": DAY1},
        ),
        run_id="r1",
    )
    assert (first.rows_loaded, first.rows_added, first.rows_quarantined) == (2, 2, 1)
    assert sorted(first.partitions) == ["2026-09", "2026-10"]
    again = land_batch(
        settings,
        SPEC,
        tenant_id="t1",
        batch=batch({"id": "a", "created": DAY1, "amount": 10, "brand_new": "x"}),
        run_id="r2",
    )
    assert (again.rows_loaded, again.rows_added) == (1, 0)
    table = read_table(settings, "demo", "things", "t1")
    assert table is not None
    rows = {r["id"]: r for r in table.to_pylist()}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["amount"] == 10 and rows["a"]["brand_new"] == "x"
    assert rows["b"]["meta"] == '{"k":[1]}' and rows["b"]["tenant_id"] == "t1"
    assert '"brand_new":"x"' in rows["a"]["_raw"]
    quarantine = read_quarantine(settings, "demo", "things", "t1")
    assert quarantine is not None
    (bad,) = quarantine.to_pylist()
    assert bad["reason"] == "missing required field(s): amount"
    assert bad["source"] == "demo" and bad["source_file"] == "GET /things"
    assert bad["source_line"] == 3 and '"id":"c"' in bad["raw_record"]


def test_an_undeclared_field_null_in_a_whole_batch_lands_no_column_of_its_own(settings):
    """A field no batch record fills has no type: left out of that batch's file (and
    kept in ``_raw``), not landed as text, so the month where it holds numbers keeps
    the lake's only type for it, and every reader (Spark's ``mergeSchema`` too) reads
    one type across the table's files."""
    months = {"2026-09": DAY1, "2026-10": DAY1 + 30 * 86_400}
    for n, (field, created) in enumerate(
        (("canceled_at", months["2026-09"]), ("canceled_at", months["2026-10"]))
    ):
        value = None if n == 0 else 1_790_000_000
        record = {"id": f"s{n}", "created": created, "amount": 1, field: value}
        land_batch(
            settings, SPEC, tenant_id="t1", batch=[Fetched(record, "GET /things", 1)], run_id="r"
        )
    folder = table_dir(settings, "demo", "things", "t1")
    types = {
        part.parent.name: pa.parquet.read_schema(part).field("canceled_at").type
        for part in sorted(folder.glob("*/part.parquet"))
        if "canceled_at" in pa.parquet.read_schema(part).names
    }
    assert types == {"month=2026-10": pa.int64()}
    table = read_table(settings, "demo", "things", "t1")
    assert table is not None
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["s0"]["canceled_at"] is None and '"canceled_at":null' in rows["s0"]["_raw"]
    assert rows["s1"]["canceled_at"] == 1_790_000_000


def test_a_lake_landed_in_day_partitions_is_folded_into_months_losing_nothing(settings):
    """Lakes written before month partitions hold a folder per day: the next landing
    of the table folds them into months, the newest version of each record wins,
    and quarantined records move with them."""
    folder = table_dir(settings, "demo", "things", "t1")
    old = [
        ("2026-09-01", [{"id": "a", "amount": 1, "_version": 1}]),
        ("2026-09-02", [{"id": "b", "amount": 2, "_version": 1}]),
        ("2026-10-05", [{"id": "d", "amount": 4, "_version": 1}]),
    ]
    for day, rows in old:
        table = pa.Table.from_pylist([{**r, "tenant_id": "t1"} for r in rows])
        write_partition(table, folder / f"date={day}" / "part.parquet")
    quarantined = pa.Table.from_pylist([{"tenant_id": "t1", "reason": "bad", "raw_record": "{}"}])
    q_folder = quarantine_dir(settings, "demo", "things", "t1")
    write_partition(quarantined, q_folder / "date=2026-09-03" / "part.parquet")

    newer = [Fetched({"id": "a", "created": DAY1, "amount": 10}, "GET /things", 1, version=5)]
    landed = land_batch(settings, SPEC, tenant_id="t1", batch=newer, run_id="r2")

    assert landed.partitions == ["2026-09"]
    assert sorted(p.name for p in folder.iterdir()) == ["month=2026-09", "month=2026-10"]
    rows = {r["id"]: r["amount"] for r in read_table(settings, "demo", "things", "t1").to_pylist()}
    assert rows == {"a": 10, "b": 2, "d": 4}
    assert [p.name for p in q_folder.iterdir()] == ["month=2026-09"]
    assert read_quarantine(settings, "demo", "things", "t1").num_rows == 1


def test_a_record_holding_nul_is_quarantined_naming_the_field(settings):
    """Postgres cannot store NUL (DuckDB can): landing quarantines such a record, so
    both targets load the same rows and the raw load never stops the tenant."""
    records = [
        {"id": "top", "created": DAY1, "amount": 1, "name": "Acme\x00Corp"},
        {"id": "deep", "created": DAY1, "amount": 2, "meta": {"tags": ["ok", "b\x00d"]}},
        {"id": "text", "created": DAY1, "amount": 3, "note": "a literal \\u0000 is fine"},
    ]
    batch = [Fetched(r, "GET /things", n) for n, r in enumerate(records, 1)]
    landed = land_batch(settings, SPEC, tenant_id="t1", batch=batch, run_id="r1")
    assert (landed.rows_loaded, landed.rows_quarantined) == (1, 2)
    table = read_table(settings, "demo", "things", "t1")
    assert table is not None and table.column("id").to_pylist() == ["text"]
    quarantine = read_quarantine(settings, "demo", "things", "t1")
    assert quarantine is not None
    reasons = {r["source_line"]: r["reason"] for r in quarantine.to_pylist()}
    assert reasons == {
        1: "NUL character in field name, which Postgres cannot store",
        2: "NUL character in field meta.tags[1], which Postgres cannot store",
    }


def _row(run_id: str, tenant: str, finished: datetime) -> LoadLogRow:
    return LoadLogRow(
        run_id=run_id,
        tenant_id=tenant,
        source="stripe",
        table_name="charges",
        rows_in=3,
        rows_loaded=2,
        rows_added=2,
        rows_quarantined=1,
        cursor_before=None,
        cursor_after='{"high_water":5,"window":null}',
        bytes=100,
        duration_s=0.5,
        status="success",
        error=None,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
    )


@pytest.mark.parametrize("target", ["embedded", "postgres"])
def test_state_store_keeps_cursors_load_log_and_a_lock(target, request):
    settings = request.getfixturevalue("settings" if target == "embedded" else "pg_settings")
    store = connector_state(settings)
    assert store.get_cursor(tenant_id="t1", source="stripe", table="charges") is None
    assert read_load_log(settings) == []
    store.put_cursor(tenant_id="t1", source="stripe", table="charges", cursor={"high_water": 1})
    store.put_cursor(
        tenant_id="t1", source="stripe", table="charges", cursor={"high_water": 2, "w": None}
    )
    assert store.get_cursor(tenant_id="t1", source="stripe", table="charges") == {
        "high_water": 2,
        "w": None,
    }
    store.record_load(_row("r1", "t1", NOW))
    store.record_load(_row("r2", "t2", NOW + timedelta(minutes=1)))
    assert [r.run_id for r in read_load_log(settings)] == ["r2", "r1"]
    (only,) = read_load_log(settings, "t1")
    assert only == _row("r1", "t1", NOW)
    with store.lock(tenant_id="t1", source="stripe", table="charges"):
        with pytest.raises(LoadInProgress):
            with connector_state(settings).lock(tenant_id="t1", source="stripe", table="charges"):
                pass
        with connector_state(settings).lock(tenant_id="t2", source="stripe", table="charges"):
            pass
    with connector_state(settings).lock(tenant_id="t1", source="stripe", table="charges"):
        pass


@pytest.mark.parametrize(
    ("check", "page"),
    [
        (stripe.check_list, {"object": "list", "data": {"id": "ch_1"}, "has_more": False}),
        (stripe.check_list, {"data": [], "has_more": "no"}),
        (stripe.check_list, {"data": ["ch_1"], "has_more": False}),
        (crm_api.check_page, {"data": [], "meta": {"page": "1"}}),
        (cms_forms.check_page, {"results": [], "next_cursor": 5}),
        (ai_usage.check_page, {"data": None}),
        (ga4.check_report, {"dimensionHeaders": [{"name": "date"}], "metricHeaders": [],
                            "rows": [{"dimensionValues": [], "metricValues": []}]}),
        (saleor.check_connection("orders"), {"data": {"orders": {"edges": [{}]}}}),
        (saleor.check_connection("orders"), {"data": {"orders": {"edges": []}}}),
        (saleor.check_connection("orders"), ["not", "an", "object"]),
    ],
)  # fmt: skip
def test_each_source_refuses_pages_of_the_wrong_shape(check, page):
    """A wrong-shaped page is retried like a non-JSON one (see http_client)."""
    with pytest.raises(MalformedPage):
        check(page)


def test_saleor_graphql_errors_are_an_answer_not_a_broken_page():
    saleor.check_connection("orders")({"data": {"orders": None}, "errors": [{"message": "x"}]})
