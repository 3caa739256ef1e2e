"""The dbt project, run for real: scores on DuckDB, the same mart on Postgres,
and a one-tenant rebuild that leaves the other tenants alone.

dbt runs as a subprocess with the environment ``Settings.dbt_env()`` gives, so
these tests also check that the settings and the committed profiles.yml agree.
Each run writes its target/ and logs/ under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest
import yaml

from connectors.landing import read_table
from connectors.sources import SOURCES
from core.contracts.score_shape import SCORE_SHAPE_COLUMNS
from core.settings import PostgresParts, Settings, get_settings
from exports.crm_leads import LEADS_SCHEMA, leads_path
from lake.files import write_partition
from tests.test_connector_sources import TIMED
from tests.test_connector_sources import ingest as ingest_source
from tests.test_connector_sources import start as start_sandbox_data
from warehouse.dbt_runs import TENANT_ENV
from warehouse.lake_tables import lake_tables
from warehouse.raw_tables import load_tenant, pg_type

DBT = Path(sys.executable).with_name("dbt")
STAGING_DIR = Path(__file__).resolve().parent.parent / "dbt" / "models" / "staging"

MART_COLUMNS = (
    "tenant_id",
    "lead_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "industry",
    "company_size",
    "country",
    "source",
    "status",
    "created_at",
    "score",
    "grade",
    "reasons",
    "score_model",
)
MART_QUERY = f"select {', '.join(MART_COLUMNS)} from analytics.mart_lead_scores"

FIRST_INGEST = datetime(2024, 4, 1, 6, 0, tzinfo=UTC)
SECOND_INGEST = datetime(2024, 4, 2, 6, 0, tzinfo=UTC)


def lead(
    *,
    tenant_id: str,
    lead_id: str,
    email: str,
    created_at: datetime,
    status: str,
    line: int,
    ingested_at: datetime = FIRST_INGEST,
    **strings: str | None,
) -> dict:
    row: dict[str, object] = dict.fromkeys(LEADS_SCHEMA.names)
    row.update(strings)
    row.update(
        tenant_id=tenant_id,
        lead_id=lead_id,
        email=email,
        created_at=created_at,
        status=status,
        custom_attributes="{}",
        _source_file="leads.csv",
        _source_line=line,
        _ingested_at=ingested_at,
    )
    return row


def known_leads() -> list[dict]:
    """Two tenants, written messy (case, spaces, a duplicate) the way exports are."""
    return [
        # t1's newest lead, so it sets t1's recency window
        lead(
            tenant_id="t1",
            lead_id="A-1",
            email=" Ann.Lee@Acme.io ",
            created_at=datetime(2024, 3, 31, 10, tzinfo=UTC),
            status="Qualified",
            line=2,
            first_name="Ann",
            last_name="Lee",
            company="Acme",
            title="CEO",
            industry="Software",
            company_size="201-1000",
            country="us",
            source="Referral",
        ),
        # exactly 30 days before t1's newest: still recent
        lead(
            tenant_id="t1",
            lead_id="A-2",
            email="bob@gmail.com",
            created_at=datetime(2024, 3, 1, 10, tzinfo=UTC),
            status="contacted",
            line=3,
            first_name="Bob",
            title="Vice President Marketing",
            industry="retail",
            company_size="51 - 200",
            country="GB",
            source="event",
        ),
        # loaded twice; the later ingest (converted) wins
        lead(
            tenant_id="t1",
            lead_id="A-3",
            email="c@beta.org",
            created_at=datetime(2024, 1, 15, tzinfo=UTC),
            status="new",
            line=4,
            title="Marketing Manager",
            industry="nonprofit",
            company_size="1-10",
            source="cold_outbound",
        ),
        lead(
            tenant_id="t1",
            lead_id="A-3",
            email="c@beta.org",
            created_at=datetime(2024, 1, 15, tzinfo=UTC),
            status="converted",
            line=4,
            ingested_at=SECOND_INGEST,
            title="Marketing Manager",
            industry="nonprofit",
            company_size="1-10",
            source="cold_outbound",
        ),
        # nothing known but what is required
        lead(
            tenant_id="t1",
            lead_id="A-4",
            email="d@hotmail.com",
            created_at=datetime(2023, 6, 1, tzinfo=UTC),
            status="unqualified",
            line=5,
        ),
        # t2 is old, but recency is per tenant: its newest lead is recent
        lead(
            tenant_id="t2",
            lead_id="G-1",
            email="eve@globex.example.com",
            created_at=datetime(2023, 5, 1, 12, tzinfo=UTC),
            status="qualified",
            line=2,
            first_name="Eve",
            company="Globex",
            title="Head of Operations",
            industry="healthcare",
            company_size="5000+",
            country="DE",
            source="partner",
        ),
        lead(
            tenant_id="t2",
            lead_id="G-2",
            email="frank@yahoo.com",
            created_at=datetime(2023, 1, 1, tzinfo=UTC),
            status="new",
            line=3,
            title="Engineer",
            industry="education",
            company_size="11-50",
            source="website",
        ),
    ]


# (tenant_id, lead_id) -> (score, grade, reasons), worked out by hand from the
# factor table in dbt/models/intermediate/crm/_int_crm__models.yml.
EXPECTED_SCORES = {
    # 25 title + 15 size + 15 industry + 15 source + 10 email + 10 status + 5 recency
    ("t1", "A-1"): (95, "A", "title_seniority:+25|company_size:+15|industry_fit:+15"),
    # 20 + 10 + 8 + 12 + 0 (gmail) + 5 + 5
    ("t1", "A-2"): (60, "B", "title_seniority:+20|lead_source:+12|company_size:+10"),
    # 12 + 2 + 3 + 2 + 10 + 10 (converted) + 0
    ("t1", "A-3"): (39, "C", "title_seniority:+12|business_email:+10|status:+10"),
    ("t1", "A-4"): (0, "D", ""),
    # 20 + 20 + 15 + 15 + 10 + 10 + 5; the 20s tie, broken by factor name
    ("t2", "G-1"): (95, "A", "company_size:+20|title_seniority:+20|industry_fit:+15"),
    # 5 + 5 + 3 + 8 + 0 (yahoo) + 3 + 0
    ("t2", "G-2"): (24, "D", "lead_source:+8|company_size:+5|title_seniority:+5"),
}


def write_lake(settings: Settings, rows: list[dict]) -> None:
    """One Parquet file per tenant, where the crm_leads asset writes them."""
    for tenant_id in sorted({r["tenant_id"] for r in rows}):
        mine = [r for r in rows if r["tenant_id"] == tenant_id]
        write_partition(
            pa.Table.from_pylist(mine, schema=LEADS_SCHEMA), leads_path(settings, tenant_id)
        )


def load_raw(pg_url: str, settings: Settings, tenant_ids: list[str]) -> None:
    """Every lake table into Postgres raw, per tenant, as the raw_tables asset loads them."""
    for table in lake_tables():
        for tenant_id in tenant_ids:
            load_tenant(pg_url, table, lake_dir=settings.lake_dir, tenant_id=tenant_id)


_LAST_PARSE: dict[tuple[Path, str], Path] = {}


def dbt_build(
    settings: Settings, run_dir: Path, *extra: str, tenant: str | None = None, ok: bool = True
) -> str:
    """`dbt build` against the settings' target, for one tenant as the pipeline runs
    it (BIZOS_DBT_TENANT_ID) or for all; fails the test with dbt's output unless it
    ends as ``ok`` says. Returns the output."""
    env = {
        **{k: v for k, v in os.environ.items() if k != TENANT_ENV},
        **settings.dbt_env(),
        **({TENANT_ENV: tenant} if tenant else {}),
        "DBT_TARGET_PATH": str(run_dir / "target"),
        "DBT_LOG_PATH": str(run_dir / "logs"),
        "DBT_USE_COLORS": "false",
    }
    project = str(settings.dbt_project_dir)
    # A later build of the same home and target starts from the last one's parse,
    # as the pipeline's builds do: only the first parses the whole project.
    parsed = run_dir / "target" / "partial_parse.msgpack"
    last = _LAST_PARSE.get((settings.home, settings.target.value))
    if last is not None and last.exists() and not parsed.exists():
        parsed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(last, parsed)
    result = subprocess.run(
        [str(DBT), "build", "--project-dir", project, "--profiles-dir", project, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if parsed.exists():
        _LAST_PARSE[(settings.home, settings.target.value)] = parsed
    output = f"{result.stdout}\n{result.stderr}"
    assert (result.returncode == 0) == ok, f"dbt build ended {result.returncode}:\n{output}"
    return output


def as_utc(value: object) -> object:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def normalized(rows: list[tuple]) -> list[tuple]:
    return sorted(tuple(as_utc(v) for v in row) for row in rows)


def duckdb_mart(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return normalized(conn.execute(MART_QUERY).fetchall())


def postgres_mart(pg_url: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return normalized(conn.execute(MART_QUERY).fetchall())


def scores(mart: list[tuple]) -> dict[tuple[str, str], tuple[int, str, str]]:
    at = {name: i for i, name in enumerate(MART_COLUMNS)}
    return {
        (r[at["tenant_id"]], r[at["lead_id"]]): (r[at["score"]], r[at["grade"]], r[at["reasons"]])
        for r in mart
    }


@pytest.fixture(scope="module")
def duckdb_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The known leads in a lake, built once on DuckDB for the tests that only read."""
    home = tmp_path_factory.mktemp("bizos")
    settings = get_settings(home=home, database_url=None)
    write_lake(settings, known_leads())
    dbt_build(settings, home / "dbt-duckdb")
    yield settings


def test_duckdb_mart_scores_known_leads(duckdb_built: Settings) -> None:
    mart = duckdb_mart(duckdb_built)

    assert scores(mart) == EXPECTED_SCORES
    at = {name: i for i, name in enumerate(MART_COLUMNS)}
    ann = next(r for r in mart if r[at["lead_id"]] == "A-1")
    assert ann[at["email"]] == "ann.lee@acme.io"
    assert ann[at["industry"]] == "software"
    assert ann[at["source"]] == "referral"
    assert ann[at["status"]] == "qualified"
    assert ann[at["country"]] == "US"
    assert ann[at["created_at"]] == datetime(2024, 3, 31, 10, tzinfo=UTC)
    assert ann[at["score_model"]] == "rules_v0"
    bob = next(r for r in mart if r[at["lead_id"]] == "A-2")
    assert bob[at["company_size"]] == "51-200"


def test_duckdb_mart_has_the_contract_columns(duckdb_built: Settings) -> None:
    with duckdb.connect(str(duckdb_built.warehouse_path), read_only=True) as conn:
        described = conn.execute("describe analytics.mart_lead_scores").fetchall()
    types = {name: kind for name, kind, *_ in described}

    # the served columns first, then the rest of the score shape (docs/scoring.md)
    assert tuple(types)[: len(MART_COLUMNS)] == MART_COLUMNS
    assert set(SCORE_SHAPE_COLUMNS) <= set(types)
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["score"] == "INTEGER"


@pytest.mark.postgres
def test_postgres_mart_equals_duckdb_mart(duckdb_built: Settings, pg_url: str) -> None:
    load_raw(pg_url, duckdb_built, ["t1", "t2"])
    pg_settings = get_settings(home=duckdb_built.home, database_url=pg_url)
    parts = PostgresParts(pg_url)
    assert pg_settings.dbt_env()["BIZOS_PG_DBNAME"] == parts.dbname

    dbt_build(pg_settings, duckdb_built.home / "dbt-postgres")

    on_postgres = postgres_mart(pg_url)
    assert on_postgres == duckdb_mart(duckdb_built)
    assert scores(on_postgres) == EXPECTED_SCORES


def test_tenant_and_batch_builds_rebuild_and_test_only_their_tenants(
    settings: Settings, tmp_path: Path
) -> None:
    """The pipeline's scoped builds, on one lake and one target folder (so later
    builds parse partially, as the pipeline's do):

    - a tenant build (tenant in BIZOS_DBT_TENANT_ID) rebuilds that tenant's rows
      only, and data tests look at its rows only, so another tenant's bad row fails
      that tenant's build, not this one's;
    - a batch build (pipelines/batch.py: tenants comma-separated) does the same for
      its tenants, who may share lead ids; a bad row inside the batch fails it;
    - when a batch fails so, each of its tenants is built alone and only the bad
      one is marked failed (pipelines.batch.build_or_isolate)."""
    from pipelines.batch import build_or_isolate
    from pipelines.runner import TenantRun

    rows = known_leads()
    # t3: a copy of t1 under another tenant id (same lead ids)
    rows += [{**r, "tenant_id": "t3"} for r in rows if r["tenant_id"] == "t1"]
    write_lake(settings, rows)
    target = tmp_path / "dbt"
    dbt_build(settings, target)
    before = scores(duckdb_mart(settings))
    assert before[("t3", "A-4")] == before[("t1", "A-4")]

    # t1's and t3's A-4 move on in the lake, t2's G-2 to a status no CRM has.
    for row in rows:
        if row["lead_id"] == "A-4" and row["tenant_id"] in {"t1", "t3"}:
            row["status"] = "qualified"
        if (row["tenant_id"], row["lead_id"]) == ("t2", "G-2"):
            row["status"] = "bogus"
    write_lake(settings, rows)
    moved = (10, "D", "status:+10")

    dbt_build(settings, target, tenant="t1")
    # Only the first build parsed the whole project (the tenant is not a --var).
    assert (target / "logs" / "dbt.log").read_text().count("Unable to do partial parsing") == 1
    after = scores(duckdb_mart(settings))
    assert after[("t1", "A-4")] == moved
    assert {k: v for k, v in after.items() if k != ("t1", "A-4")} == {
        k: v for k, v in before.items() if k != ("t1", "A-4")
    }
    assert after[("t2", "G-2")] == EXPECTED_SCORES[("t2", "G-2")]

    dbt_build(settings, target, tenant="t1,t3")
    after = scores(duckdb_mart(settings))
    assert after[("t1", "A-4")] == after[("t3", "A-4")] == moved
    # t2 was not in the batch: its rows are as they were, its bad row tested by nobody
    assert {k: v for k, v in after.items() if k[0] == "t2"} == {
        k: v for k, v in before.items() if k[0] == "t2"
    }

    # t2's bad row fails a batch with t1, then t2 alone; t1 alone passes.
    runs = {t: TenantRun(tenant_id=t, success=True, run_id="", seconds=0.0) for t in ("t1", "t2")}
    lines: list[str] = []
    log = tmp_path / "batch.dbt.log"
    builds = build_or_isolate(
        settings, runs, "dbt_intermediate", batch_id="batch-test", log=lines.append, log_path=log
    )
    assert builds == 3  # the batch, then t1 alone, then t2 alone
    assert runs["t1"].success and not runs["t2"].success
    assert "dbt_intermediate: dbt build failed" in str(runs["t2"].error)
    assert any("one by one" in line for line in lines)
    # Both failed builds (the batch's, t2's) name the test that failed.
    failures = [
        line
        for line in log.read_text().splitlines()
        if "FAIL 1 accepted_values_stg_crm_export__leads_status" in line
    ]
    assert len(failures) == 2, log.read_text()[-3000:]


# -- every lake table of the API sources ----------------------------------------------
#
# Real lake files: the sandbox serves each source in its provider's shape over HTTP
# and the real connectors land them (connectors.landing). Both tenants connect
# every source but cms_forms, and only acme connects ai_usage, so one staging
# model reads a table no tenant has loaded and another a table one tenant lacks.

SOURCE_TENANTS = ("acme", "globex")
NOT_CONNECTED = {("acme", "cms_forms"), ("globex", "cms_forms"), ("globex", "ai_usage")}
# The sources read by time, keyed by `id` (SP-API, keyed by ASIN and read whole,
# has its staging checked by the sourcing tests on their own lake).
STAGING_MODELS = [
    (source, table, f"stg_{source}__{table}")
    for source in TIMED
    for table in SOURCES[source].tables
]


def staging_key(source: str, model: str) -> str:
    """The name the staging model gives the lake's `id`."""
    found = re.search(r"\bid as (\w+),", (STAGING_DIR / source / f"{model}.sql").read_text())
    assert found, model
    return found.group(1)


@pytest.fixture(scope="module")
def source_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Both tenants' sources landed from the sandbox, built once on DuckDB."""
    tmp = tmp_path_factory.mktemp("sources")
    settings = get_settings(home=tmp / "bizos", database_url=None)
    with start_sandbox_data(tmp, scale=0.02) as sandbox:
        for tenant in SOURCE_TENANTS:
            for source in TIMED:
                if (tenant, source) not in NOT_CONNECTED:
                    ingest_source(settings, sandbox, source, tenant)
    dbt_build(settings, settings.home / "dbt-duckdb", "--select", "path:models/staging")
    return settings


def lake_rows(settings: Settings, source: str, table: str, tenant: str) -> pa.Table | None:
    return read_table(settings, source, table, tenant)


def duckdb_rows(settings: Settings, query: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return normalized(conn.execute(query).fetchall())


def test_every_lake_table_has_a_source_with_its_declared_columns() -> None:
    """The sources YAML and the landing code agree: a source per lake table, named
    and typed as landing writes it (the empty relation of lake_source() is typed
    from these), with freshness on _ingested_at and the raw asset as its key."""
    for table in lake_tables():
        if table.source == "sp_api" and not (STAGING_DIR / "sp_api").is_dir():
            continue  # its staging comes with the sourcing models (issue 10's other half)
        path = STAGING_DIR / table.source / f"_{table.source}__sources.yml"
        (source,) = yaml.safe_load(path.read_text())["sources"]
        entry = next(t for t in source["tables"] if t["name"] == table.table)
        declared = {c["name"]: c["data_type"] for c in entry["columns"]}
        assert declared == {f.name: pg_type(f.type) for f in table.declared}, table.name
        assert entry["identifier"] == table.name
        assert source["config"]["loaded_at_field"] == "_ingested_at"
        assert entry["config"]["meta"]["dagster"]["asset_key"] == ["raw", table.name]
        assert (STAGING_DIR / table.source / f"stg_{table.name}.sql").exists()


def test_duckdb_staging_has_one_row_per_lake_record(source_lake: Settings) -> None:
    for source, table, model in STAGING_MODELS:
        key = staging_key(source, model)
        staged = duckdb_rows(
            source_lake, f"select tenant_id, {key} from staging.{model} order by 1, 2"
        )
        expected = []
        for tenant in SOURCE_TENANTS:
            landed = lake_rows(source_lake, source, table, tenant)
            if landed is not None:
                expected += [(tenant, i) for i in landed.column("id").to_pylist()]
        assert staged == sorted(expected), model


def test_a_source_no_tenant_connected_builds_empty_and_typed(source_lake: Settings) -> None:
    assert duckdb_rows(source_lake, "select * from staging.stg_cms_forms__submissions") == []
    with duckdb.connect(str(source_lake.warehouse_path), read_only=True) as conn:
        described = conn.execute("describe staging.stg_cms_forms__submissions").fetchall()
    types = {name: kind for name, kind, *_ in described}
    assert types["submission_id"] == "VARCHAR"
    assert types["submitted_at"] == "TIMESTAMP WITH TIME ZONE"
    ai = duckdb_rows(source_lake, "select distinct tenant_id from staging.stg_ai_usage__usage")
    assert ai == [("acme",)]


def test_duckdb_staging_reads_provider_fields(source_lake: Settings) -> None:
    """Casts and fields from _raw: a charge's customer and amounts, an order's
    total as an exact number, a GA4 day as a date."""
    charges = lake_rows(source_lake, "stripe", "charges", "acme")
    assert charges is not None
    first = json.loads(charges.column("_raw")[0].as_py())
    (row,) = duckdb_rows(
        source_lake,
        "select customer_id, amount, is_paid, epoch(created_at)::bigint "
        "from staging.stg_stripe__charges "
        f"where tenant_id = 'acme' and charge_id = '{first['id']}'",
    )
    assert row == (first["customer"], first["amount"], first["paid"], first["created"])
    orders = lake_rows(source_lake, "saleor", "orders", "acme")
    assert orders is not None
    order = json.loads(orders.column("_raw")[0].as_py())
    (total,) = duckdb_rows(
        source_lake,
        "select total_gross_amount from staging.stg_saleor__orders "
        f"where tenant_id = 'acme' and order_id = '{order['id']}'",
    )
    assert total == (Decimal(str(order["total"]["gross"]["amount"])).quantize(Decimal("0.01")),)
    days = duckdb_rows(
        source_lake, "select distinct typeof(report_date) from staging.stg_ga4__report_rows"
    )
    assert days == [("DATE",)]


@pytest.mark.postgres
def test_postgres_staging_equals_duckdb_staging(source_lake: Settings, pg_url: str) -> None:
    """The raw loader copies every lake table into Postgres and the same staging
    models give the same rows there, empty tables included."""
    load_raw(pg_url, source_lake, list(SOURCE_TENANTS))
    pg_settings = get_settings(home=source_lake.home, database_url=pg_url)
    dbt_build(pg_settings, source_lake.home / "dbt-postgres", "--select", "path:models/staging")

    with psycopg.connect(pg_url) as conn:
        for _, _, model in STAGING_MODELS:
            query = f"select * from staging.{model}"
            on_postgres = normalized(conn.execute(query).fetchall())
            assert on_postgres == duckdb_rows(source_lake, query), model
