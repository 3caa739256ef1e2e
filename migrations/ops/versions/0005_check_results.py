"""Data-quality check results: every evaluation of every check, kept.

``check_results`` holds one row per check evaluation (Great Expectations suites,
row-count change, referential integrity, freshness, dbt tests) per tenant and run:
whether it passed, whether it blocks the tenant's downstream assets, its
severity, the observed value and the details. It is the history the health
dashboard and ``GET /v1/ops/freshness`` read, and the row-count check compares a
load with the last passing result of its table and tenant.

Nothing refers to this revision id: it is chained after whatever ops revision
comes before it when branches merge.

Revision ID: ops_0005
Revises: ops_0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0005"
down_revision: str | None = "ops_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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


def downgrade() -> None:
    schema = _schema()
    op.drop_index("check_results_lookup_idx", table_name="check_results", schema=schema)
    op.drop_table("check_results", schema=schema)
