"""``serving.sourcing_opportunities`` behind row-level security, like ``serving.supplier_risk``.

Frozen DDL; ``tests/test_serving_migrations.py`` checks the table against
``core.contracts.sourcing_opportunities.SOURCING_OPPORTUNITIES``. Nothing depends on
this revision's id, so it may be renumbered when branches merge.

Revision ID: serving_0009
Revises: serving_0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0009"
down_revision: str | None = "serving_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# asin is COLLATE "C" so keyset order is byte order, as in the embedded store.
SOURCING_OPPORTUNITIES = """
CREATE TABLE serving.sourcing_opportunities (
    tenant_id              text NOT NULL,
    asin                   text COLLATE "C" NOT NULL,
    marketplace_id         text NOT NULL,
    title                  text,
    brand                  text,
    category               text NOT NULL,
    currency               text,
    score                  integer CHECK (score BETWEEN 0 AND 100),
    grade                  text,
    reasons                text,
    score_model            text NOT NULL,
    score_status           text NOT NULL,
    demand_score           integer,
    margin_score           integer,
    competition_score      integer,
    stability_score        integer,
    supplier_score         integer,
    confidence             text NOT NULL,
    price                  double precision,
    price_basis            text,
    fees_per_unit          double precision,
    referral_rate          double precision,
    fixed_fees             double precision,
    landed_cost            double precision,
    margin_per_unit        double precision,
    margin_pct             double precision,
    roi_pct                double precision,
    sales_rank             bigint,
    est_monthly_units      integer,
    est_monthly_units_low  integer,
    est_monthly_units_high integer,
    est_monthly_revenue    double precision,
    est_monthly_profit     double precision,
    offer_count            integer,
    fba_offer_count        integer,
    buy_box_share          double precision,
    price_cv               double precision,
    offer_days             integer NOT NULL,
    supplier_count         integer NOT NULL,
    supplier_id            text,
    supplier_name          text,
    supplier_sku           text,
    supplier_tier          text,
    supplier_review_status text,
    review_required        boolean NOT NULL,
    match_rule             text,
    unit_cost              double precision,
    cost_currency          text,
    moq                    integer,
    lead_time_days         integer,
    reasons_json           text NOT NULL,
    model_version          text NOT NULL,
    config_version         text,
    scored_at              timestamptz NOT NULL,
    published_at           timestamptz NOT NULL,
    CONSTRAINT sourcing_opportunities_pkey PRIMARY KEY (tenant_id, asin)
)
"""


def upgrade() -> None:
    op.execute(SOURCING_OPPORTUNITIES)
    # the API's order: score (unknown last), supplier component, asin
    op.execute(
        "CREATE INDEX sourcing_opportunities_rank_idx ON serving.sourcing_opportunities"
        " (tenant_id, COALESCE(score, -1) DESC, COALESCE(supplier_score, -100) DESC, asin)"
    )
    op.execute("ALTER TABLE serving.sourcing_opportunities ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE serving.sourcing_opportunities FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON serving.sourcing_opportunities FOR SELECT"
        " TO bizos_reader USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    op.execute(
        "CREATE POLICY publisher_all ON serving.sourcing_opportunities FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT SELECT ON serving.sourcing_opportunities TO bizos_reader")


def downgrade() -> None:
    op.execute("DROP TABLE serving.sourcing_opportunities")
