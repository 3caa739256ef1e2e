"""Superset as the analysts meet it: bootstrapped by `bizos dashboards up` on a home of
its own, every chart asked through Superset's chart data API as one tenant's analyst
and compared with the same query on the serving store, and every dashboard and tab
opened in a real headless Chromium.

One Superset process serves the whole module (built once, stopped at the end). The
data are fixture rows published through ``serving.publish.publish_table`` (the same
contracts and store as the pipeline's publish) and load-log rows recorded through
the connectors' own state store: two tenants of different sizes, so a missing
row-level filter shows as a wrong number.

At the end the same Superset is bootstrapped again on a Postgres store (a throwaway
database with other fixture sizes), through the read-only login `bizos dashboards
db-role` makes: the chart data API per tenant against the same queries on Postgres,
and what that login can and cannot do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pytest
import yaml

from cli.dashboards import BUNDLE_DIR, DASHBOARDS_DIR, DashboardSettings
from connectors.state import LoadLogRow, connector_state
from core.contracts.lead_score_history import LEAD_SCORE_HISTORY
from core.contracts.lead_scores import LEAD_SCORES
from core.contracts.revenue_traffic import AI_USAGE_COST, REVENUE_MONTHLY, TRAFFIC_BY_SOURCE
from core.contracts.sourcing_opportunities import SOURCING_OPPORTUNITIES
from core.contracts.supplier_risk import SUPPLIER_RISK
from core.contracts.table import TableContract
from core.settings import PROJECT_ROOT, Settings, get_settings
from migrations import ops_sqlite_path
from serving.publish import publish_table
from tests.postgres import fresh_database

BIZOS = Path(sys.executable).with_name("bizos")
SUPERSET_VENV = DashboardSettings().venv
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
# Two tenants of different sizes; ids carry a tenant prefix, so a row of the other
# tenant on a screen or in an answer is recognisable.
TENANTS = {"acme-robotics": ("ACM", 12, 5, 3), "bluebird-retail": ("BLU", 7, 3, 2)}
PASSWORD = "analyst-secret-1"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    not (SUPERSET_VENV / "bin" / "gunicorn").exists()
    or not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Superset's venv or Chromium missing: run `make superset-env chromium`",
)


# -- fixture rows -------------------------------------------------------------------------


def lead_rows(tenant: str, prefix: str, leads: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(leads):
        score = 95 - i * 7 - (3 if prefix == "BLU" else 0)
        grade = "A" if score >= 75 else "B" if score >= 50 else "C" if score >= 25 else "D"
        reasons = [("title_seniority", 25), ("company_size", 10 + i)]
        rows.append(
            {
                "tenant_id": tenant,
                "lead_id": f"{prefix}-{i:03d}",
                "email": f"lead{i}@{prefix.lower()}.example",
                "first_name": "Lee",
                "last_name": f"Number{i}",
                "company": f"{prefix} Customer {i}",
                "title": "VP Sales",
                "industry": "software",
                "company_size": "51-200",
                "country": "DE",
                "source": "crm_api",
                "status": "converted" if i % 3 == 0 else "open",
                "created_at": NOW - timedelta(days=i),
                "score": score,
                "grade": grade,
                "reasons": "|".join(f"{c}:+{p}" for c, p in reasons),
                "score_model": "rules",
                "score_status": "scored",
                "probability": score / 100,
                "fit_score": score // 2,
                "engagement_score": score - score // 2,
                "is_mql": score >= 60,
                "reasons_json": json.dumps(
                    [{"code": c, "label": c.replace("_", " "), "points": p} for c, p in reasons]
                ),
                "model_version": "rules-v1",
                "config_version": "cfg-1",
                "scored_at": NOW,
            }
        )
    return rows


def history_rows(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Today's scores and yesterday's (a few points lower), for the MQL trend."""
    columns = LEAD_SCORE_HISTORY.columns
    rows = []
    for days_back, drop in ((0, 0), (1, 8)):
        for lead in leads:
            row = {c: lead[c] for c in columns}
            row["scored_at"] = NOW - timedelta(days=days_back)
            row["score"] = max(0, lead["score"] - drop)
            row["is_mql"] = row["score"] >= 60
            row["grade"] = (
                "A"
                if row["score"] >= 75
                else "B"
                if row["score"] >= 50
                else "C"
                if row["score"] >= 25
                else "D"
            )
            rows.append(row)
    return rows


def supplier_rows(tenant: str, prefix: str, suppliers: int) -> list[dict[str, Any]]:
    tiers = ("critical", "high", "medium", "low", "low")
    statuses = ("pending", "info_requested", "approved", "not_required", "lapsed")
    rows = []
    for i in range(suppliers):
        hit = i == 0
        rows.append(
            {
                "tenant_id": tenant,
                "supplier_id": f"{prefix}-S{i}",
                "legal_name": f"{prefix} Supplier {i}",
                "country": ("DE", "CN", "US")[i % 3],
                "score": 90 - i * 15,
                "grade": tiers[i],
                "reasons": "sanctions:+40" if hit else "delivery:+10",
                "score_model": "rules",
                "score_status": "scored",
                "compliance_risk": 30 if i % 2 == 0 else 0,
                "sanctions_risk": 40 if hit else 0,
                "delivery_risk": 10 + 5 * i + (2 if prefix == "BLU" else 0),
                "country_risk": 5,
                "concentration_risk": 5,
                "sanctions_hit": hit,
                "review_status": statuses[i],
                "review_due_date": date(2026, 12, 1) + timedelta(days=10 * i),
                "last_decision": None,
                "last_decision_id": None,
                "last_decided_at": None,
                "documents_json": documents_json(prefix, i),
                "risk_version": f"rv-{i}",
                "reasons_json": json.dumps(
                    [{"code": "delivery", "label": "late deliveries", "points": 10}]
                ),
                "model_version": "risk-v1",
                "config_version": "cfg-1",
                "scored_at": NOW,
            }
        )
    return rows


TODAY = datetime.now(UTC).date()
"""The documents' expiry dates are set from today: the expiring-documents chart asks
the store for ``CURRENT_DATE`` (UTC on both stores) at query time."""


def supplier_documents(prefix: str, supplier: int) -> list[dict[str, Any]]:
    """Each supplier's required documents as mart_supplier_risk lists them: one expiring
    in a few days, one on the window's last day (30 days: shown), one a day past it
    (31: not shown), one expired yesterday, one missing; varied by tenant and supplier."""
    shift = 0 if prefix == "ACM" else 1
    plan = {
        0: [("certificate_of_insurance", 3 + shift), ("tax_form", None)],
        1: [("quality_certificate", 30), ("business_licence", 31)],
        2: [("certificate_of_insurance", -1), ("bank_letter", 12 + shift)],
    }.get(supplier, [("tax_form", 400)])
    docs = []
    for doc_type, days in plan:
        expiry = None if days is None else TODAY + timedelta(days=days)
        status = (
            "missing"
            if expiry is None
            else "expired"
            if days < 0
            else "expiring"
            if days <= 60
            else "valid"
        )
        docs.append(
            {
                "doc_type": doc_type,
                "status": status,
                "document_id": None if expiry is None else f"{prefix}-d{supplier}-{doc_type}",
                "file_name": None if expiry is None else f"{prefix.lower()}-{doc_type}.pdf",
                "expiry_date": None if expiry is None else expiry.isoformat(),
            }
        )
    return sorted(docs, key=lambda d: str(d["doc_type"]))


def documents_json(prefix: str, supplier: int) -> str:
    return json.dumps(supplier_documents(prefix, supplier))


def expiring_within_30_days(prefix: str, suppliers: int) -> set[tuple[str, str, str]]:
    """(supplier_id, doc_type, expiry) of the documents the chart must show, by hand."""
    found = set()
    for i in range(suppliers):
        for doc in supplier_documents(prefix, i):
            expiry = doc["expiry_date"]
            if expiry and TODAY <= date.fromisoformat(expiry) <= TODAY + timedelta(days=30):
                found.add((f"{prefix}-S{i}", doc["doc_type"], expiry))
    return found


def record_loads(settings: Settings, tenant: str, loads: int) -> None:
    store = connector_state(settings)
    for i in range(loads):
        failed = i == loads - 1 and tenant == "bluebird-retail"
        store.record_load(
            LoadLogRow(
                run_id=f"run-{tenant}-{i}",
                tenant_id=tenant,
                source=("stripe", "ga4", "crm_api")[i % 3],
                table_name=("charges", "sessions", "contacts")[i % 3],
                rows_in=100 + i,
                rows_loaded=0 if failed else 90 + i,
                rows_added=0 if failed else 80 + i,
                rows_quarantined=0 if failed else 10,
                cursor_before=None,
                cursor_after=None,
                bytes=1000,
                duration_s=1.5,
                status="failed" if failed else "success",
                error="HTTP 500" if failed else None,
                started_at=NOW - timedelta(hours=i + 1),
                finished_at=NOW - timedelta(hours=i),
            )
        )


def revenue_tables(tenant: str, prefix: str) -> dict[TableContract, list[dict[str, Any]]]:
    """A few months of each revenue-and-traffic mart; bluebird's numbers are smaller."""
    scale = 3 if prefix == "ACM" else 1
    months = [date(2026, m, 1) for m in (9, 10, 11)]
    revenue = [
        {
            "tenant_id": tenant,
            "month": month,
            "currency": currency,
            "charges": 10 * scale + i,
            "gross_amount": 100_000 * scale + 1_000 * i,
            "refunded_amount": 2_000 * i,
            "fee_amount": 3_000 * scale,
            "net_amount": 100_000 * scale + 1_000 * i - 2_000 * i - 3_000 * scale,
        }
        for i, month in enumerate(months)
        for currency in ("eur", "usd")
    ]
    traffic = [
        {
            "tenant_id": tenant,
            "report_date": date(2026, 11, day),
            "source": source,
            "medium": medium,
            "sessions": 50 * scale + day,
            "conversions": scale + day % 3,
            "page_views": 120 * scale,
        }
        for day in (1, 2, 3)
        for source, medium in (
            ("google", "organic"),
            ("newsletter", "email"),
            ("(direct)", "(none)"),
        )
    ]
    usage = [
        {
            "tenant_id": tenant,
            "month": month,
            "model": model,
            "feature": feature,
            "requests": 40 * scale,
            "input_tokens": 9_000 * scale,
            "output_tokens": 2_000 * scale,
            "cost_usd": 0.25 * scale + (0.5 if model == "gpt-4o" else 0.0),
        }
        for month in months[1:]
        for model, feature in (("gpt-4o-mini", "lead_summary"), ("gpt-4o", "document_extraction"))
    ]
    return {REVENUE_MONTHLY: revenue, TRAFFIC_BY_SOURCE: traffic, AI_USAGE_COST: usage}


def table_of(contract: TableContract, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=contract.schema)


SOURCING = SOURCING_OPPORTUNITIES


def sourcing_rows(tenant: str, prefix: str, count: int) -> list[dict[str, Any]]:
    """Opportunities as mart_sourcing_opportunities publishes them (the contract's
    columns); the first needs its supplier reviewed."""
    rows = []
    for i in range(count):
        asin = f"{prefix}-B00{i}"
        tier = "high" if i == 0 else "low"
        reasons = [
            {"code": "strong_demand", "label": "demand", "points": 30, "evidence": None},
            {"code": f"supplier_{tier}_risk", "label": "supplier", "points": -5, "evidence": None},
        ]
        score = 90 - 10 * i
        rows.append(
            {
                "tenant_id": tenant,
                "asin": asin,
                "marketplace_id": "ATVPDKIKX0DER",
                "title": f"{prefix} product {i}",
                "brand": "Acme",
                "category": "tools",
                "currency": "USD",
                "score": score,
                "grade": "A" if score >= 75 else "B",
                "reasons": "|".join(f"{r['code']}:{r['points']:+d}" for r in reasons),
                "score_model": "sourcing_rules_v1",
                "score_status": "scored",
                "demand_score": 30,
                "margin_score": 25,
                "competition_score": 20,
                "stability_score": 15,
                "supplier_score": -5,
                "confidence": "high",
                "price": 20.0 + i,
                "price_basis": "buy_box",
                "fees_per_unit": 4.0,
                "referral_rate": 0.15,
                "fixed_fees": 1.0,
                "landed_cost": 8.0,
                "margin_per_unit": 8.0 + i,
                "margin_pct": 30.0 + i,
                "roi_pct": 100.0,
                "sales_rank": 1000 + i,
                "est_monthly_units": 100 * (i + 1),
                "est_monthly_units_low": 50 * (i + 1),
                "est_monthly_units_high": 150 * (i + 1),
                "est_monthly_revenue": (20.0 + i) * 100 * (i + 1),
                "est_monthly_profit": 500.0,
                "offer_count": 3,
                "fba_offer_count": 1,
                "buy_box_share": 0.5,
                "price_cv": 0.0,
                "offer_days": 10,
                "supplier_count": 1,
                "supplier_id": f"{prefix}-S{i}",
                "supplier_name": f"{prefix} Supplier {i}",
                "supplier_sku": f"SKU-{i}",
                "supplier_tier": tier,
                "supplier_review_status": "pending" if tier == "high" else "approved",
                "review_required": tier == "high",
                "match_rule": "asin",
                "unit_cost": 5.0,
                "cost_currency": "USD",
                "moq": 100,
                "lead_time_days": 14,
                "reasons_json": json.dumps(reasons),
                "model_version": "sourcing_rules_v1",
                "config_version": "cfg-1",
                "scored_at": NOW,
            }
        )
    return rows


# -- Superset through its own CLI --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bizos(
    home: Path, port: int, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``bizos dashboards ARGS`` on the embedded store, or with ``env`` (the Postgres
    phase: its database and Superset's login) on top."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BIZOS_", "DAGSTER_"))}
    base.update(BIZOS_HOME=str(home), BIZOS_SUPERSET_PORT=str(port), **(env or {}))
    env = base
    return subprocess.run(
        [str(BIZOS), "dashboards", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


class Api:
    """Superset's REST API as one user: a JWT from /api/v1/security/login."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        # Writes need Superset's CSRF token, which is bound to the session cookie.
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        self.csrf: str | None = None
        body = {"username": user, "password": password, "provider": "db", "refresh": False}
        self.token = self.call("POST", "/api/v1/security/login", body, auth=False)["access_token"]

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        if auth and method in ("PUT", "POST", "DELETE"):
            if self.csrf is None:
                self.csrf = self.call("GET", "/api/v1/security/csrf_token/")["result"]
            headers["X-CSRFToken"] = self.csrf
            headers["Referer"] = self.base
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def charts(self) -> dict[str, int]:
        found = self.call("GET", "/api/v1/chart/?q=(page_size:100)")["result"]
        return {c["slice_name"]: c["id"] for c in found}

    def chart_data(self, chart_id: int) -> list[dict[str, Any]]:
        result = self.call("GET", f"/api/v1/chart/{chart_id}/data/")["result"]
        assert len(result) == 1
        assert not result[0].get("error"), result[0]
        rows: list[dict[str, Any]] = result[0]["data"]
        return rows


def publish_fixture(settings: Settings, tenants: dict[str, tuple[str, int, int, int]]) -> None:
    """Every tenant's rows published to the settings' store, and their loads logged."""
    for tenant, (prefix, leads, suppliers, loads) in tenants.items():
        scores = lead_rows(tenant, prefix, leads)
        publish_table(settings, LEAD_SCORES, tenant, table_of(LEAD_SCORES, scores))
        publish_table(
            settings, LEAD_SCORE_HISTORY, tenant, table_of(LEAD_SCORE_HISTORY, history_rows(scores))
        )
        publish_table(
            settings,
            SUPPLIER_RISK,
            tenant,
            table_of(SUPPLIER_RISK, supplier_rows(tenant, prefix, suppliers)),
        )
        for contract, rows in revenue_tables(tenant, prefix).items():
            publish_table(settings, contract, tenant, table_of(contract, rows))
        record_loads(settings, tenant, loads)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = get_settings(home=tmp_path_factory.mktemp("dashboards"), database_url=None)
    publish_fixture(settings, TENANTS)
    return settings


@pytest.fixture(scope="module")
def superset(home: Settings) -> Iterator[dict[str, Any]]:
    """`bizos dashboards up` from nothing, then again; Superset stays up for the module."""
    port = free_port()
    runs = []
    try:
        for _ in range(2):
            started = time.monotonic()
            done = bizos(home.home, port, "up")
            runs.append((done, time.monotonic() - started, metadata_snapshot(home)))
            assert done.returncode == 0, done.stderr[-3000:]
        with ThreadPoolExecutor(len(TENANTS)) as pool:
            grants = pool.map(
                lambda t: bizos(
                    home.home,
                    port,
                    "grant",
                    "--user",
                    f"analyst-{t}",
                    "--tenant",
                    t,
                    stdin=PASSWORD + "\n",
                ),
                TENANTS,
            )
            for granted in grants:
                assert granted.returncode == 0, granted.stderr[-3000:]
        yield {"port": port, "runs": runs}
    finally:
        bizos(home.home, port, "down")


def metadata_snapshot(home: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """What an import writes: dashboards, charts, datasets, databases, roles, filters."""
    queries = {
        "dashboards": "SELECT uuid, changed_on, position_json FROM dashboards ORDER BY uuid",
        "slices": "SELECT uuid, changed_on, params FROM slices ORDER BY uuid",
        "tables": "SELECT uuid, changed_on, table_name FROM tables ORDER BY uuid",
        "dbs": "SELECT uuid, changed_on, sqlalchemy_uri FROM dbs ORDER BY uuid",
        "roles": "SELECT name FROM ab_role ORDER BY name",
        "rls": "SELECT name, clause, changed_on FROM row_level_security_filters ORDER BY name",
        "rls_tables": "SELECT rls_filter_id, table_id FROM rls_filter_tables ORDER BY 1, 2",
        "users": "SELECT username FROM ab_user ORDER BY username",
    }
    with sqlite3.connect(home.home / "superset" / "superset.db") as con:
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}


def bundle_docs(kind: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((BUNDLE_DIR / kind).rglob("*.yaml"))]


# -- the same query on the store -----------------------------------------------------------


_GRAINS = {"P1D": "day", "P1M": "month"}


def expected_rows(home: Settings, chart: dict[str, Any], tenant: str) -> list[dict[str, Any]]:
    """The chart's saved query, written out by hand for one tenant and run on the store
    itself (DuckDB serving views or the ops SQLite; on Postgres as the publisher), not
    through Superset."""
    dataset = next(d for d in bundle_docs("datasets") if d["uuid"] == chart["dataset_uuid"])
    query = json.loads(chart["query_context"])["queries"][0]
    is_ops = dataset["schema"] == "ops"
    postgres = home.database_url is not None
    source = (f"{dataset['schema']}." if postgres else "") + dataset["table_name"]
    if str(dataset.get("sql") or "").startswith("bizos://sql/"):
        name = dataset["sql"].removeprefix("bizos://sql/")
        dialect = "postgresql" if postgres else "duckdb"
        text = (DASHBOARDS_DIR / "sql" / f"{name}.{dialect}.sql").read_text()
        source = f"({text.replace('{schema}', 'serving' if postgres else 'main')}) AS v"
    select, group = [], []
    for column in query["columns"]:
        if isinstance(column, dict):
            expr = f"date_trunc('{_GRAINS[column['timeGrain']]}', {column['sqlExpression']})"
            select.append(f'{expr} AS "{column["label"]}"')
            group.append(expr)
        else:
            select.append(f'"{column}"')
            group.append(f'"{column}"')
    for metric in query["metrics"]:
        select.append(f'{metric["sqlExpression"]} AS "{metric["label"]}"')
    where = f"tenant_id = '{tenant}'"
    if query["extras"].get("where"):
        where += f" AND {query['extras']['where']}"
    sql = f"SELECT {', '.join(select)} FROM {source} WHERE {where}"
    if query["metrics"] and group:
        sql += f" GROUP BY {', '.join(group)}"
    if query["orderby"] and not query["metrics"]:
        column, ascending = query["orderby"][0]
        sql += f' ORDER BY "{column}" {"ASC" if ascending else "DESC"}'
    sql += f" LIMIT {query['row_limit']}"
    if postgres:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(home.postgres_url, row_factory=dict_row) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            return conn.execute(sql).fetchall()
    if is_ops:
        with sqlite3.connect(f"file:{ops_sqlite_path(home)}?mode=ro", uri=True) as con:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    con = duckdb.connect(str(home.serving_dir / "serving.duckdb"), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def normalized(value: Any) -> Any:
    """One form for a value from either side: Superset sends times as epoch ms."""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(value.timestamp() * 1000)
    if isinstance(value, date):
        return round(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, int | float):
        return round(float(value), 6)
    return value


def row_set(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(sorted((k, normalized(v)) for k, v in row.items())) for row in rows), key=repr
    )


def dataset_needs(dataset: dict[str, Any]) -> set[str]:
    """The tables a dataset reads: its own, or those its virtual SQL names."""
    if str(dataset.get("sql") or "").startswith("bizos://sql/"):
        name = dataset["sql"].removeprefix("bizos://sql/")
        text = (DASHBOARDS_DIR / "sql" / f"{name}.duckdb.sql").read_text()
        return set(re.findall(r"\{schema\}\.(\w+)", text))
    return {dataset["table_name"]}


def landed_charts(home: Settings, have: set[str] | None = None) -> list[dict[str, Any]]:
    """The bundle's charts whose tables are in the store now (``have``, or the
    embedded store's published tables and the ops load log)."""
    if have is None:
        have = {p.name for p in home.serving_dir.iterdir() if p.is_dir()} | {"load_log"}
    datasets = {d["uuid"]: dataset_needs(d) for d in bundle_docs("datasets")}
    return [c for c in bundle_docs("charts") if datasets[c["dataset_uuid"]] <= have]


# -- the tests -----------------------------------------------------------------------------


def test_up_from_nothing_then_again_changes_nothing(superset: dict[str, Any]) -> None:
    (first, first_s, first_meta), (second, second_s, second_meta) = superset["runs"]
    assert "dashboards imported" in first.stderr
    assert "dashboards unchanged" in second.stderr and "already running" in second.stderr
    assert second_meta == first_meta
    assert {d for (d,) in first_meta["roles"]} >= {
        "bizos_analyst",
        "tenant:acme-robotics",
        "tenant:bluebird-retail",
    }
    assert len(first_meta["dashboards"]) == len(bundle_docs("dashboards")) == 5
    # a table not landed yet (no tenant has published sourcing opportunities here) is
    # named, not failed on; the ops tables exist from the ops store's first use
    assert "not landed yet: sourcing_opportunities" in first.stderr
    assert "not landed yet: check_results" not in first.stderr
    print(f"up from nothing {first_s:.1f} s, second up {second_s:.1f} s")


def test_every_chart_answers_each_analyst_with_only_their_tenant(
    home: Settings, superset: dict[str, Any]
) -> None:
    """Every chart of every tab through the chart data API, as each tenant's analyst in
    turn: the same charts asked twice within the cache's lifetime, so a cached answer
    of the other tenant would show."""
    charts = landed_charts(home)
    assert len(charts) >= 17
    answers: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for tenant in TENANTS:
        api = Api(superset["port"], f"analyst-{tenant}", PASSWORD)
        ids = api.charts()
        answers[tenant] = {}
        for chart in charts:
            got = api.chart_data(ids[chart["slice_name"]])
            want = expected_rows(home, chart, tenant)
            assert row_set(got) == row_set(want), (tenant, chart["slice_name"])
            answers[tenant][chart["slice_name"]] = row_set(got)
            other = {"ACM", "BLU"} - {TENANTS[tenant][0]}
            assert not any(f"{o}-" in repr(got) for o in other), chart["slice_name"]
    differing = [
        c
        for c in answers["acme-robotics"]
        if answers["acme-robotics"][c] != answers["bluebird-retail"][c]
    ]
    assert len(differing) >= len(charts) - 1, differing


def as_iso_date(value: Any) -> str:
    """A date from the chart data API (epoch ms or text) as ``YYYY-MM-DD``."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC).date().isoformat()
    return str(value)[:10]


def assert_expiring_documents(port: int, user: str, prefix: str, suppliers: int) -> None:
    """The chart lists exactly the documents expiring today to 30 days from today."""
    api = Api(port, user, PASSWORD)
    rows = api.chart_data(api.charts()[EXPIRING_CHART])
    got = [(r["supplier_id"], r["doc_type"], as_iso_date(r["expiry_date"])) for r in rows]
    want = expiring_within_30_days(prefix, suppliers)
    assert sorted(got) == sorted(want), (user, got)
    assert [g[2] for g in got] == sorted(g[2] for g in got), "soonest first"


EXPIRING_CHART = "Documents expiring in the next 30 days"


def test_expiring_documents_are_exactly_those_of_the_next_30_days(
    superset: dict[str, Any],
) -> None:
    """Per document, from the risk mart's document list: one expiring on the 30th day is
    in, one on the 31st, one expired yesterday and a missing one are out."""
    for tenant, (prefix, _leads, suppliers, _loads) in TENANTS.items():
        assert_expiring_documents(superset["port"], f"analyst-{tenant}", prefix, suppliers)


def superset_python(home: Settings, port: int, script: str, stdin: str = "") -> None:
    """Run ``script`` with Superset's Python and this installation's config (what an
    admin does by hand in Superset's UI, for the cases ``grant`` never makes)."""
    from cli.dashboards import Superset

    installation = Superset(home, DashboardSettings(port=port))
    done = subprocess.run(
        [str(installation.python), "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        env=installation.env(),
        cwd=installation.state_dir,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


ADD_USER_WITHOUT_TENANT = """
import sys
from superset.app import create_app

with create_app().app_context():
    from superset import security_manager as sm
    roles = [sm.find_role("Gamma"), sm.find_role("bizos_analyst")]
    name = sys.argv[1] if len(sys.argv) > 1 else "analyst-no-tenant"
    assert sm.add_user(name, "No", "Tenant", name + "@localhost", roles,
                       password=sys.stdin.read().strip())
"""


def test_an_analyst_with_no_tenant_role_sees_no_rows(
    home: Settings, superset: dict[str, Any]
) -> None:
    """An analyst made by hand in the UI with the analyst role and no tenant: the
    deny-all filter leaves every chart empty (counts 0, sums null), not everyone's rows."""
    superset_python(home, superset["port"], ADD_USER_WITHOUT_TENANT, stdin=PASSWORD)
    api = Api(superset["port"], "analyst-no-tenant", PASSWORD)
    ids = api.charts()
    charts = landed_charts(home)
    assert len(charts) >= 17
    for chart in charts:
        rows = api.chart_data(ids[chart["slice_name"]])
        values = [v for row in rows for v in row.values()]
        assert all(v in (None, 0) for v in values), (chart["slice_name"], rows)
        query = json.loads(chart["query_context"])["queries"][0]
        if query["columns"]:
            assert rows == [], chart["slice_name"]


def test_grant_of_a_new_user_without_a_password_fails_and_creates_nothing(
    home: Settings, superset: dict[str, Any]
) -> None:
    before = metadata_snapshot(home)
    done = bizos(
        home.home, superset["port"], "grant", "--user", "newcomer", "--tenant", "new-tenant"
    )
    assert done.returncode == 2
    assert "user newcomer does not exist: a new user needs a password" in done.stderr
    # neither the user nor the new tenant's role and row filter
    assert metadata_snapshot(home) == before


def test_an_analyst_of_two_tenants_sees_both_and_admin_sees_all(
    home: Settings, superset: dict[str, Any]
) -> None:
    granted = bizos(
        home.home,
        superset["port"],
        "grant",
        "--user",
        "analyst-acme-robotics",
        "--tenant",
        "bluebird-retail",
    )
    # an existing user: no password asked for, the second tenant's role added
    assert granted.returncode == 0, granted.stderr
    assert "updated analyst-acme-robotics: tenants acme-robotics, bluebird-retail" in (
        granted.stderr.replace("\n", " ")
    )
    api = Api(superset["port"], "analyst-acme-robotics", PASSWORD)
    leads = api.chart_data(api.charts()["Leads by grade"])
    assert sum(r["Leads"] for r in leads) == sum(t[1] for t in TENANTS.values())


def test_grant_refuses_a_bad_tenant_id(home: Settings, superset: dict[str, Any]) -> None:
    bad_tenant = bizos(home.home, superset["port"], "grant", "--user", "x", "--tenant", "Not OK!")
    assert bad_tenant.returncode == 2 and "Not OK!" in bad_tenant.stderr


def test_every_dashboard_and_tab_renders_in_chromium(
    home: Settings, superset: dict[str, Any]
) -> None:
    """Log in as bluebird's analyst in headless Chromium, open each dashboard and each tab,
    wait for the charts, fail on any chart error, keep a screenshot of each tab."""
    dashboards = [
        {
            "slug": d["slug"],
            "tabs": list(d["position"]["TABS-main"]["children"]),
        }
        for d in bundle_docs("dashboards")
    ]
    request = {
        "url": f"http://127.0.0.1:{superset['port']}",
        "user": "analyst-bluebird-retail",
        "password": PASSWORD,
        "dashboards": dashboards,
        "screenshots": str(SCREENSHOTS),
        "timeout_s": 40,
    }
    done = subprocess.run(
        [str(SUPERSET_VENV / "bin" / "python"), str(DASHBOARDS_DIR / "browser_check.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=400,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert done.returncode == 0, answer.get("error") or done.stderr[-3000:]
    print(f"browser: {answer['seconds']} s")
    notes_expected = {"sourcing-opportunities"}
    for slug, tabs in answer["dashboards"].items():
        assert len(tabs) == len(next(d for d in dashboards if d["slug"] == slug)["tabs"])
        for tab in tabs:
            where = f"{slug} / {tab['tab']}"
            assert tab["errors"] == [], where
            assert tab["charts"] + tab["notes"] > 0, where
            assert tab["rendered"] == tab["charts"], where
            assert "ACM-" not in tab["text"], where
            assert Path(tab["screenshot"]).stat().st_size > 10_000, where
        if slug in notes_expected:
            assert sum(t["notes"] for t in tabs) > 0, slug
        else:
            assert sum(t["notes"] for t in tabs) == 0, slug
    lead_text = answer["dashboards"]["lead-scores"][0]["text"]
    assert "BLU-000" in lead_text


def test_export_writes_ui_edits_back_without_credentials(
    home: Settings, superset: dict[str, Any], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, bundle)
    admin = Api(superset["port"], "admin", "admin")
    chart_id = admin.charts()["Leads by grade"]
    admin.call("PUT", f"/api/v1/chart/{chart_id}", {"slice_name": "Leads per grade"})
    done = bizos(home.home, superset["port"], "export", "--bundle", str(bundle))
    assert done.returncode == 0, done.stderr
    assert "kept as in the bundle (shows a not-landed note): Sourcing opportunities" in done.stderr
    edited = yaml.safe_load((bundle / "charts" / "leads_by_grade.yaml").read_text())
    assert edited["slice_name"] == "Leads per grade"
    # every file still names the same UUIDs, and nothing of this installation
    before = {p.relative_to(BUNDLE_DIR) for p in BUNDLE_DIR.rglob("*.yaml")}
    after = {p.relative_to(bundle) for p in bundle.rglob("*.yaml")}
    assert before == after
    text = "\n".join(p.read_text() for p in bundle.rglob("*.yaml"))
    assert str(home.home) not in text and "duckdb:///" not in text
    assert not re.search(r"password:\s*\S", text)
    dbs = [yaml.safe_load(p.read_text()) for p in (bundle / "databases").glob("*.yaml")]
    assert sorted(d["sqlalchemy_uri"] for d in dbs) == ["bizos://ops", "bizos://serving"]
    unchanged = (bundle / "dashboards" / "sourcing_opportunities.yaml").read_text()
    assert unchanged == (BUNDLE_DIR / "dashboards" / "sourcing_opportunities.yaml").read_text()
    admin.call("PUT", f"/api/v1/chart/{chart_id}", {"slice_name": "Leads by grade"})


def test_a_mart_that_lands_gets_its_charts_at_the_next_up(
    home: Settings, superset: dict[str, Any]
) -> None:
    for tenant, (prefix, *_rest) in TENANTS.items():
        count = 4 if prefix == "ACM" else 2
        publish_table(
            home, SOURCING, tenant, table_of(SOURCING, sourcing_rows(tenant, prefix, count))
        )
    done = bizos(home.home, superset["port"], "up")
    assert done.returncode == 0, done.stderr
    assert "dashboards imported" in done.stderr
    assert "not landed yet: sourcing_opportunities" not in done.stderr
    api = Api(superset["port"], "analyst-bluebird-retail", PASSWORD)
    ids = api.charts()
    dataset = next(d for d in bundle_docs("datasets") if d["table_name"] == SOURCING.name)
    sourcing = [c for c in bundle_docs("charts") if c["dataset_uuid"] == dataset["uuid"]]
    assert len(sourcing) == 3
    for chart in sourcing:
        got = api.chart_data(ids[chart["slice_name"]])
        assert row_set(got) == row_set(expected_rows(home, chart, "bluebird-retail"))
        assert "ACM-" not in repr(got)


# -- the same Superset on the Postgres store ------------------------------------------------

# Other sizes than the embedded store's, so an answer left over from it would show.
PG_TENANTS = {"acme-robotics": ("ACM", 9, 4, 2), "bluebird-retail": ("BLU", 4, 2, 3)}
PG_SOURCING = {"acme-robotics": 3, "bluebird-retail": 5}


@pytest.fixture(scope="module")
def on_postgres(
    home: Settings, superset: dict[str, Any], pg_server: str
) -> Iterator[dict[str, Any]]:
    """The module's Superset bootstrapped again, by `bizos dashboards up`, on a Postgres
    store with the fixture rows published and Superset's own read-only login from
    `bizos dashboards db-role`: one Superset process for both stores (a second would
    cost its start-up again); the import points its two databases at Postgres."""
    port = superset["port"]
    with fresh_database(pg_server) as url:
        pg = get_settings(home=home.home, database_url=url)
        publish_fixture(pg, PG_TENANTS)
        for tenant, count in PG_SOURCING.items():
            prefix = PG_TENANTS[tenant][0]
            publish_table(
                pg, SOURCING, tenant, table_of(SOURCING, sourcing_rows(tenant, prefix, count))
            )
        env = {"BIZOS_DATABASE_URL": url}
        made = bizos(home.home, port, "db-role", env=env)
        assert made.returncode == 0, made.stderr
        login = next(
            line.split("=", 1)[1]
            for line in made.stdout.splitlines()
            if line.startswith("BIZOS_SUPERSET_DATABASE_URL=")
        )
        admin = {"BIZOS_SUPERSET_ADMIN_USER": "admin", "BIZOS_SUPERSET_ADMIN_PASSWORD": "admin"}
        refused = {
            "unset": bizos(home.home, port, "up", env={**env, **admin}),
            "publisher": bizos(
                home.home, port, "up", env={**env, **admin, "BIZOS_SUPERSET_DATABASE_URL": url}
            ),
            # libpq quotes a malformed connection string back in its error
            "malformed": bizos(
                home.home,
                port,
                "up",
                env={**env, **admin, "BIZOS_SUPERSET_DATABASE_URL": login.replace("://", "//")},
            ),
        }
        env.update(admin, BIZOS_SUPERSET_DATABASE_URL=login)
        up = bizos(home.home, port, "up", env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        with ThreadPoolExecutor(len(PG_TENANTS)) as pool:
            grants = pool.map(
                lambda t: bizos(
                    home.home,
                    port,
                    "grant",
                    "--user",
                    f"pg-{t}",
                    "--tenant",
                    t,
                    stdin=PASSWORD + "\n",
                    env=env,
                ),
                PG_TENANTS,
            )
            for granted in grants:
                assert granted.returncode == 0, granted.stderr
        yield {"settings": pg, "url": url, "login": login, "up": up, "refused": refused}


@pytest.mark.postgres
def test_on_postgres_up_refuses_a_login_that_is_not_read_only(
    on_postgres: dict[str, Any],
) -> None:
    unset, publisher = on_postgres["refused"]["unset"], on_postgres["refused"]["publisher"]
    assert unset.returncode == 2 and "BIZOS_SUPERSET_DATABASE_URL is not set" in unset.stderr
    assert publisher.returncode == 2 and "is privileged" in publisher.stderr
    malformed = on_postgres["refused"]["malformed"]
    assert malformed.returncode == 2 and "cannot connect" in malformed.stderr
    password = urlsplit(on_postgres["login"]).password
    assert password
    for done in (unset, publisher, malformed, on_postgres["up"]):
        assert on_postgres["url"] not in done.stdout + done.stderr
        assert password not in done.stdout + done.stderr


@pytest.mark.postgres
def test_on_postgres_every_chart_answers_each_analyst_with_only_their_tenant(
    on_postgres: dict[str, Any], superset: dict[str, Any]
) -> None:
    """The serving schema through Superset's login: each tenant's analyst gets only that
    tenant's rows, equal to the same query run on the store as the publisher."""
    pg, up = on_postgres["settings"], on_postgres["up"]
    assert "dashboards imported" in up.stderr
    # on Postgres every table exists from the migrations; one with no rows has not landed
    assert "not landed yet: check_results" in up.stderr
    assert "not landed yet: sourcing_opportunities" not in up.stderr
    datasets = bundle_docs("datasets")
    have = {n for d in datasets for n in dataset_needs(d)} - {"check_results"}
    charts = landed_charts(pg, have)
    assert len(charts) == len(bundle_docs("charts")) - 2
    for tenant, (prefix, _leads, suppliers, _loads) in PG_TENANTS.items():
        api = Api(superset["port"], f"pg-{tenant}", PASSWORD)
        ids = api.charts()
        for chart in charts:
            got = api.chart_data(ids[chart["slice_name"]])
            assert row_set(got) == row_set(expected_rows(pg, chart, tenant)), (
                tenant,
                chart["slice_name"],
            )
            other = {"ACM", "BLU"} - {prefix}
            assert not any(f"{o}-" in repr(got) for o in other), chart["slice_name"]
        assert_expiring_documents(superset["port"], f"pg-{tenant}", prefix, suppliers)
    leads = Api(superset["port"], "pg-bluebird-retail", PASSWORD)
    by_grade = leads.chart_data(leads.charts()["Leads by grade"])
    assert sum(r["Leads"] for r in by_grade) == PG_TENANTS["bluebird-retail"][1]


@pytest.mark.postgres
def test_on_postgres_the_superset_login_reads_only_and_only_serving(
    on_postgres: dict[str, Any],
) -> None:
    """Superset's login sees every tenant's serving rows (its own filters split them)
    and can do nothing else: no writes, no other tables, no other role; the API's
    reader still sees one tenant per transaction."""
    import psycopg

    from serving.api_role import create_api_role

    pg = on_postgres["settings"]
    with psycopg.connect(on_postgres["login"], autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False, True)
        owned = conn.execute("SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole")
        assert owned.fetchone() == (0,)
        total = conn.execute("SELECT count(*) FROM serving.lead_scores").fetchone()
        assert total == (sum(t[1] for t in PG_TENANTS.values()),)
        assert conn.execute("SELECT count(*) FROM ops.load_log").fetchone() == (
            sum(t[3] for t in PG_TENANTS.values()),
        )
        refused = [
            "INSERT INTO serving.lead_model_cards (tenant_id) VALUES ('x')",
            "UPDATE serving.lead_scores SET score = 1",
            "DELETE FROM serving.supplier_risk",
            "TRUNCATE serving.revenue_monthly",
            "CREATE TABLE serving.mine (a int)",
            "CREATE TABLE public.mine (a int)",
            "DELETE FROM ops.load_log",
            "SELECT * FROM serving.publish_log",
            "SELECT * FROM ops.api_keys",
            "SELECT * FROM ops.tenants",
            "SELECT * FROM ops.supplier_review_decisions",
            "SET ROLE bizos_reader",
            "SET ROLE postgres",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(create_api_role(pg)) as conn:
        assert conn.execute("SELECT count(*) FROM serving.lead_scores").fetchone() == (0,)
        conn.execute("SELECT set_config('bizos.tenant_id', 'bluebird-retail', true)")
        assert conn.execute("SELECT count(*) FROM serving.lead_scores").fetchone() == (
            PG_TENANTS["bluebird-retail"][1],
        )
