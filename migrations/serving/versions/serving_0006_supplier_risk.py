"""``serving.supplier_risk`` behind row-level security, like ``serving.lead_scores``.

Frozen DDL; ``tests/test_serving_migrations.py`` checks the table against
``core.contracts.supplier_risk.SUPPLIER_RISK``.

Revision ID: serving_0006
Revises: serving_0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0006"
down_revision: str | None = "serving_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# supplier_id is COLLATE "C" so keyset order is byte order, as in the embedded store.
SUPPLIER_RISK = """
CREATE TABLE serving.supplier_risk (
    tenant_id          text NOT NULL,
    supplier_id        text COLLATE "C" NOT NULL,
    legal_name         text NOT NULL,
    country            text,
    score              integer CHECK (score BETWEEN 0 AND 100),
    grade              text,
    reasons            text,
    score_model        text NOT NULL,
    score_status       text NOT NULL,
    compliance_risk    integer,
    sanctions_risk     integer,
    delivery_risk      integer,
    country_risk       integer,
    concentration_risk integer,
    sanctions_hit      boolean NOT NULL,
    review_status      text NOT NULL,
    review_due_date    date,
    last_decision      text,
    last_decision_id   bigint,
    last_decided_at    timestamptz,
    documents_json     text NOT NULL,
    risk_version       text NOT NULL,
    reasons_json       text NOT NULL,
    model_version      text NOT NULL,
    config_version     text,
    scored_at          timestamptz NOT NULL,
    published_at       timestamptz NOT NULL,
    CONSTRAINT supplier_risk_pkey PRIMARY KEY (tenant_id, supplier_id)
)
"""


def upgrade() -> None:
    op.execute(SUPPLIER_RISK)
    op.execute(
        "CREATE INDEX supplier_risk_review_idx ON serving.supplier_risk "
        "(tenant_id, review_status, supplier_id)"
    )
    op.execute("ALTER TABLE serving.supplier_risk ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE serving.supplier_risk FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON serving.supplier_risk FOR SELECT TO bizos_reader"
        " USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    op.execute(
        "CREATE POLICY publisher_all ON serving.supplier_risk FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT SELECT ON serving.supplier_risk TO bizos_reader")


def downgrade() -> None:
    op.execute("DROP TABLE serving.supplier_risk")
