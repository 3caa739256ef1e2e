"""Data-quality check results: every evaluation of every check, kept.

``check_results`` holds one row per check evaluation (Great Expectations suites,
row-count change, referential integrity, freshness, dbt tests) per tenant and run:
whether it passed, whether it blocks the tenant's downstream assets, its
severity, the observed value and the details. It is the history the health
dashboard and ``GET /v1/ops/freshness`` read, and the row-count check compares a
load with the last passing result of its table and tenant.

On Postgres the API's role reads them only through two ``SECURITY DEFINER``
functions that take the caller's API key hash and answer for its tenant alone:
``ops.tenant_source_loads`` (newest successful load per table, and the connected
sources) and ``ops.tenant_check_results`` (the latest result of each check).

Nothing refers to this revision id: it is chained after whatever ops revision
comes before it when branches merge.

Revision ID: ops_0005
Revises: ops_0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0005"
down_revision: str | None = "ops_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# The key is checked here, not by the caller, as in ops_0003: the tenant comes
# from the key, and a key without scores:read (or admin) reads nothing.
_KEY_TENANT = """
    SELECT a.tenant_id FROM ops.api_keys a
    WHERE a.key_hash = p_key_hash AND a.revoked_at IS NULL
      AND (a.expires_at IS NULL OR a.expires_at > now())
      AND (' ' || a.scopes || ' ' LIKE '% scores:read %'
           OR ' ' || a.scopes || ' ' LIKE '% admin %')
"""
SOURCE_LOADS = f"""
CREATE FUNCTION ops.tenant_source_loads(p_key_hash text)
RETURNS TABLE (source text, table_name text, last_success timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.source, l.table_name, max(l.finished_at) FILTER (WHERE l.status = 'success')
    FROM ops.load_log l
    WHERE l.tenant_id = ({_KEY_TENANT})
    GROUP BY l.source, l.table_name
    UNION ALL
    SELECT c.source, NULL, NULL
    FROM ops.tenant_credentials c
    WHERE c.tenant_id = ({_KEY_TENANT})
$$
"""
CHECK_RESULTS = f"""
CREATE FUNCTION ops.tenant_check_results(p_key_hash text)
RETURNS TABLE (asset_key text, check_name text, passed boolean, blocking boolean,
               severity text, observed_value text, run_id text, evaluated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (r.asset_key, r.check_name)
           r.asset_key, r.check_name, r.passed, r.blocking, r.severity,
           r.observed_value, r.run_id, r.evaluated_at
    FROM ops.check_results r
    WHERE r.tenant_id = ({_KEY_TENANT})
    ORDER BY r.asset_key, r.check_name, r.id DESC
$$
"""
FUNCTIONS = (
    "ops.tenant_source_loads(text)",
    "ops.tenant_check_results(text)",
)


def _schema() -> str | None:
    return "ops" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "check_results",
        sa.Column("id", _AUTO_ID, sa.Identity(always=True), primary_key=True),
        sa.Column("check_name", sa.Text, nullable=False),
        sa.Column("asset_key", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("blocking", sa.Boolean, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("observed_value", sa.Text),
        sa.Column("details", _JSON),
        sa.Column("run_id", sa.Text),
        sa.Column("evaluated_at", _TIME, nullable=False),
        sa.CheckConstraint("severity IN ('ERROR', 'WARN')", name="check_results_severity_check"),
        schema=schema,
    )
    # The latest result of one check of one tenant: the API's and the row-count
    # check's question.
    op.create_index(
        "check_results_lookup_idx",
        "check_results",
        ["tenant_id", "asset_key", "check_name", "evaluated_at"],
        schema=schema,
    )
    if schema is None:
        return
    op.execute(SOURCE_LOADS)
    op.execute(CHECK_RESULTS)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO bizos_reader")


def downgrade() -> None:
    schema = _schema()
    if schema is not None:
        for function in FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}")
    op.drop_index("check_results_lookup_idx", table_name="check_results", schema=schema)
    op.drop_table("check_results", schema=schema)
