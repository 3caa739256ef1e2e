"""``serving.revenue_monthly``, ``serving.traffic_by_source``, ``serving.ai_usage_cost``.

The revenue-and-traffic marts (dbt/models/marts/revenue), behind row-level security
like ``serving.supplier_risk``: FORCE RLS, ``tenant_isolation`` for ``bizos_reader``
by ``bizos.tenant_id``, ``publisher_all`` for the migrating role, SELECT granted to
``bizos_reader``. Frozen DDL; ``tests/test_serving_migrations.py`` checks each table
against its contract in ``core.contracts.revenue_traffic``.

Revision ID: serving_0010
Revises: serving_0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0010"
down_revision: str | None = "serving_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Text keys are COLLATE "C" so keyset order is byte order, as in the embedded store.
TABLES = {
    "revenue_monthly": """
CREATE TABLE serving.revenue_monthly (
    tenant_id       text NOT NULL,
    month           date NOT NULL,
    currency        text COLLATE "C" NOT NULL,
    charges         bigint NOT NULL CHECK (charges >= 0),
    gross_amount    bigint NOT NULL CHECK (gross_amount >= 0),
    refunded_amount bigint NOT NULL CHECK (refunded_amount >= 0),
    fee_amount      bigint NOT NULL CHECK (fee_amount >= 0),
    net_amount      bigint NOT NULL,
    published_at    timestamptz NOT NULL,
    CONSTRAINT revenue_monthly_pkey PRIMARY KEY (tenant_id, month, currency)
)
""",
    "traffic_by_source": """
CREATE TABLE serving.traffic_by_source (
    tenant_id    text NOT NULL,
    report_date  date NOT NULL,
    source       text COLLATE "C" NOT NULL,
    medium       text COLLATE "C" NOT NULL,
    sessions     bigint NOT NULL CHECK (sessions >= 0),
    conversions  bigint NOT NULL CHECK (conversions >= 0),
    page_views   bigint NOT NULL CHECK (page_views >= 0),
    published_at timestamptz NOT NULL,
    CONSTRAINT traffic_by_source_pkey PRIMARY KEY (tenant_id, report_date, source, medium)
)
""",
    "ai_usage_cost": """
CREATE TABLE serving.ai_usage_cost (
    tenant_id     text NOT NULL,
    month         date NOT NULL,
    model         text COLLATE "C" NOT NULL,
    feature       text COLLATE "C" NOT NULL,
    requests      bigint NOT NULL CHECK (requests >= 0),
    input_tokens  bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
    cost_usd      double precision NOT NULL CHECK (cost_usd >= 0),
    published_at  timestamptz NOT NULL,
    CONSTRAINT ai_usage_cost_pkey PRIMARY KEY (tenant_id, month, model, feature)
)
""",
}


def upgrade() -> None:
    for name, ddl in TABLES.items():
        op.execute(ddl)
        op.execute(f"ALTER TABLE serving.{name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE serving.{name} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON serving.{name} FOR SELECT TO bizos_reader"
            " USING (tenant_id = current_setting('bizos.tenant_id', true))"
        )
        op.execute(
            f"CREATE POLICY publisher_all ON serving.{name} FOR ALL TO CURRENT_USER"
            " USING (true) WITH CHECK (true)"
        )
        op.execute(f"GRANT SELECT ON serving.{name} TO bizos_reader")


def downgrade() -> None:
    for name in reversed(TABLES):
        op.execute(f"DROP TABLE serving.{name}")
