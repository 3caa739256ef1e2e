"""The lake on object storage: BIZOS_LAKE_URL=s3://bucket/prefix against a real
S3-compatible server (moto's, over HTTP; tests/s3.py), written and read by the
platform's own code, by pyarrow and by DuckDB's httpfs as dbt reads it.

The whole `bizos run` on an S3 lake, compared with the same run on a local
folder, is in tests/test_runs_embedded.py, which already has the local run.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from connectors.landing import Fetched, TableSpec, land_batch, read_table
from core.settings import Settings
from exports.crm_leads import ingest_crm_leads, leads_path, read_leads
from lake.duckdb_s3 import configure_s3, secret_sql
from lake.files import (
    PartitionWriter,
    find,
    lake_root,
    read_partition,
    write_partition,
)
from lake.s3 import S3Path
from tests.s3 import SECRET_KEY, S3Server
from tests.test_crm_ingest import HEADER, drop, lead_line
from warehouse.raw_tables import RawTable, load_tenant

SPEC = TableSpec(
    source="demo",
    name="things",
    date_field="created",
    date_format="epoch",
    required=("amount",),
    columns={"id": pa.string(), "created": pa.int64(), "amount": pa.int64()},
)
SEP = int(datetime(2026, 9, 1, 10, tzinfo=UTC).timestamp())
OCT = SEP + 30 * 86_400


def batch(*records: dict) -> list[Fetched]:
    return [Fetched(r, "GET /things", n) for n, r in enumerate(records, 1)]


def objects(root: S3Path) -> list[str]:
    """Every object key under the lake, relative to it."""
    selector = pafs.FileSelector(root.key, recursive=True, allow_not_found=True)
    infos = root.fs.get_file_info(selector)
    return sorted(i.path[len(root.key) + 1 :] for i in infos if i.type == pafs.FileType.File)


@pytest.fixture
def s3(s3_server: S3Server, bizos_home: Path) -> Settings:
    return s3_server.settings(bizos_home)


def s3_root(settings: Settings) -> S3Path:
    root = lake_root(settings)
    assert isinstance(root, S3Path)
    return root


def test_a_table_lands_on_s3_in_the_lake_layout_and_reads_back_everywhere(s3, caplog):
    """Landing writes month partitions as objects under the prefix; the platform
    (pyarrow) and DuckDB (httpfs, with the glob dbt's sources use) read them back."""
    caplog.set_level(logging.DEBUG)
    landed = land_batch(
        s3,
        SPEC,
        tenant_id="t1",
        batch=batch(
            {"id": "a", "created": SEP, "amount": 1},
            {"id": "b", "created": OCT, "amount": 2},
            {"id": "c", "created": SEP},  # no amount: quarantined
        ),
        run_id="r1",
    )
    assert (landed.rows_loaded, landed.rows_quarantined) == (2, 1)
    root = s3_root(s3)
    assert str(root).startswith("s3://lake-") and str(root).endswith("/lake")
    assert objects(root) == [
        f"_quarantine/demo/things/tenant=t1/month={datetime.now(UTC):%Y-%m}/part.parquet",
        "demo/things/tenant=t1/month=2026-09/part.parquet",
        "demo/things/tenant=t1/month=2026-10/part.parquet",
    ]

    table = read_table(s3, "demo", "things", "t1")
    assert table is not None
    assert sorted(table.select(["id", "amount"]).to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "amount": 1},
        {"id": "b", "amount": 2},
    ]

    with duckdb.connect() as conn:
        assert configure_s3(conn, s3)
        glob = f"{root}/demo/things/tenant=*/*/*.parquet"  # as the dbt sources read
        rows = conn.sql(
            f"select tenant_id, id, amount from read_parquet('{glob}', union_by_name=true,"
            " hive_partitioning=false) order by id"
        ).fetchall()
    assert rows == [("t1", "a", 1), ("t1", "b", 2)]
    assert SECRET_KEY not in caplog.text


def test_a_rerun_replaces_partitions_and_never_duplicates(s3):
    records = batch(
        {"id": "a", "created": SEP, "amount": 1}, {"id": "b", "created": OCT, "amount": 2}
    )
    land_batch(s3, SPEC, tenant_id="t1", batch=records, run_id="r1")
    before = objects(s3_root(s3))
    again = land_batch(s3, SPEC, tenant_id="t1", batch=records, run_id="r2")
    assert again.rows_added == 0
    assert objects(s3_root(s3)) == before  # the same objects, replaced, none added
    table = read_table(s3, "demo", "things", "t1")
    assert table is not None and table.num_rows == 2
    assert set(table.column("_run_id").to_pylist()) == {"r2"}

    # A streamed partition (the CRM export's writer) too: the second ingest of the
    # same files replaces the tenant's one object.
    rows = [lead_line(n) for n in range(1, 6)]
    drop(s3, "t1", "a.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    assert ingest_crm_leads(s3, "t1").rows_loaded == 5
    assert ingest_crm_leads(s3, "t1").rows_loaded == 5
    leads = read_leads(s3, "t1")
    assert leads is not None and leads.num_rows == 5
    crm = [k for k in objects(s3_root(s3)) if k.startswith("crm_export/")]
    assert crm == ["crm_export/leads/tenant=t1/leads.parquet"]
    assert list((s3.home / "tmp" / "lake").iterdir()) == []  # no staging file left behind


def test_a_failed_write_leaves_the_old_object_whole(s3):
    """S3 cannot rename atomically: a partition is finished locally before its one
    upload, so a write that fails midway never replaces (or truncates) the object."""
    path = lake_root(s3) / "demo" / "things" / "tenant=t1" / "month=2026-09" / "part.parquet"
    old = pa.table({"id": ["a", "b"], "amount": [1, 2]})
    write_partition(old, path)

    # Fails while encoding (Parquet has no union type), before any byte is sent.
    union = pa.UnionArray.from_sparse(
        pa.array([0], type=pa.int8()), [pa.array([1]), pa.array(["x"])]
    )
    with pytest.raises(pa.ArrowNotImplementedError):
        write_partition(pa.table({"u": union}), path)
    assert read_partition(path) == old

    # Fails halfway through a streamed partition: some batches written, then an
    # error before the commit. (Streaming straight to the object would complete
    # the upload on close and replace the old object with a partial file.)
    schema = pa.schema([("id", pa.string()), ("amount", pa.int64())])
    with pytest.raises(pa.ArrowInvalid):
        with PartitionWriter(path, schema) as writer:
            writer.write(pa.table({"id": ["c"], "amount": [3]}))
            writer.write(pa.table({"id": ["d"], "amount": ["not a number"]}))
            writer.commit()
    assert read_partition(path) == old
    assert [str(p) for p in find(lake_root(s3), "**/*.parquet")] == [str(path)]
    assert list((s3.home / "tmp" / "lake").iterdir()) == []

    # And a commit replaces it whole.
    with PartitionWriter(path, schema) as writer:
        writer.write(pa.table({"id": ["c"], "amount": [3]}))
        writer.commit()
    assert read_partition(path) == pa.table({"id": ["c"], "amount": [3]}, schema=schema)


def test_the_postgres_raw_load_reads_the_s3_lake(s3_server, bizos_home, pg_url):
    settings = s3_server.settings(bizos_home, database_url=pg_url)
    land_batch(
        settings,
        SPEC,
        tenant_id="t1",
        batch=batch(
            {"id": "a", "created": SEP, "amount": 1}, {"id": "b", "created": OCT, "amount": 2}
        ),
        run_id="r1",
    )
    raw = RawTable("demo", "things", pa.schema([("tenant_id", pa.string()), ("id", pa.string())]))
    load = load_tenant(settings.postgres_url, raw, lake_dir=lake_root(settings), tenant_id="t1")
    assert load.rows == 2
    assert all(f.startswith("s3://") for f in load.files) and len(load.files) == 2
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, amount FROM raw.demo__things ORDER BY id").fetchall()
    assert rows == [("a", 1), ("b", 2)]


def test_removing_a_tenant_deletes_only_its_objects(s3):
    from pipelines.tenant_lifecycle import _remove_lake_folders

    for tenant in ("t1", "t2"):
        land_batch(
            s3,
            SPEC,
            tenant_id=tenant,
            batch=batch({"id": "a", "created": SEP, "amount": 1}, {"id": "c", "created": SEP}),
            run_id="r1",
        )
    assert _remove_lake_folders(s3, "t1") == 2  # its table and its quarantine
    left = objects(s3_root(s3))
    assert left and all("tenant=t2/" in key for key in left)


def test_the_sweep_removes_stale_staging_files_of_an_s3_lake(s3):
    """A run killed mid-write leaves its partition's local staging file (never an
    object): the next run's sweep removes it, and not one a live run is writing."""
    from pipelines.housekeeping import sweep_temp_files

    staging = s3.home / "tmp" / "lake"
    staging.mkdir(parents=True)
    old, new = staging / ".part.parquet.1.tmp", staging / ".part.parquet.2.tmp"
    for path in (old, new):
        path.write_bytes(b"half a parquet")
    cutoff = time.time()
    os.utime(old, (cutoff - 60, cutoff - 60))
    os.utime(new, (cutoff + 1, cutoff + 1))
    assert sweep_temp_files(s3, older_than=cutoff) == [old]
    assert new.exists()


def test_the_s3_settings_never_show_the_secret(s3):
    root = s3_root(s3)
    assert SECRET_KEY not in repr(s3) and SECRET_KEY not in str(s3)
    assert SECRET_KEY not in repr(root) and SECRET_KEY not in repr(root.store)
    assert SECRET_KEY not in str(leads_path(s3, "t1"))
    # The secret reaches DuckDB only in the statement that makes it, never stored.
    with duckdb.connect() as conn:
        configure_s3(conn, s3)
        shown = conn.sql("select * from duckdb_secrets()").fetchall()
    assert shown and SECRET_KEY not in str(shown)
    with pytest.raises(RuntimeError, match="BIZOS_LAKE_URL is s3://"):
        _ = s3.lake_dir


def test_the_secret_statement_follows_the_endpoint():
    https = secret_sql(
        endpoint_url="https://minio.internal:9000",
        region="eu-west-1",
        access_key_id="k",
        secret_access_key="it's",
    )
    assert "ENDPOINT 'minio.internal:9000'" in https and "USE_SSL true" in https
    assert "URL_STYLE 'path'" in https and "SECRET 'it''s'" in https
    aws = secret_sql(endpoint_url=None, region=None, access_key_id=None, secret_access_key=None)
    assert "ENDPOINT" not in aws and "KEY_ID" not in aws and "REGION 'us-east-1'" in aws
    with pytest.raises(ValueError, match="AWS_ENDPOINT_URL"):
        secret_sql(
            endpoint_url="minio:9000", region=None, access_key_id=None, secret_access_key=None
        )
