"""``serving.lead_model_cards``: each tenant's lead model card, behind RLS.

One row per tenant (``mart_lead_model_cards``), read by ``GET /v1/leads/model``.
Isolation as for lead_scores: FORCE row-level security, ``tenant_isolation`` for
``bizos_reader`` by ``bizos.tenant_id``, ``publisher_all`` for the migrating role,
SELECT granted to ``bizos_reader``; no SECURITY DEFINER function needed.

Revision ID: serving_0005
Revises: serving_0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0005"
down_revision: str | None = "serving_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEAD_MODEL_CARDS = """
CREATE TABLE serving.lead_model_cards (
    tenant_id               text NOT NULL,
    score_model             text NOT NULL
        CHECK (score_model IN ('tenant_logreg', 'pooled_logreg', 'rules_v0')),
    model_version           text NOT NULL,
    config_version          text,
    trained_at              timestamptz,
    reason                  text,
    intercept               double precision,
    base_score              integer,
    labels_positive         integer,
    labels_negative         integer,
    labels_open             integer,
    labels_used             integer,
    train_rows              integer,
    holdout_rows            integer,
    holdout_positives       integer,
    auc                     double precision,
    log_loss                double precision,
    calibration_error       double precision,
    rules_auc               double precision,
    rules_log_loss          double precision,
    rules_calibration_error double precision,
    grade_a                 integer,
    grade_b                 integer,
    grade_c                 integer,
    mql_threshold           integer,
    features_json           text NOT NULL,
    calibration_json        text NOT NULL,
    custom_attributes_json  text NOT NULL,
    published_at            timestamptz NOT NULL,
    CONSTRAINT lead_model_cards_pkey PRIMARY KEY (tenant_id)
)
"""


def upgrade() -> None:
    op.execute(LEAD_MODEL_CARDS)
    op.execute("ALTER TABLE serving.lead_model_cards ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE serving.lead_model_cards FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON serving.lead_model_cards FOR SELECT TO bizos_reader"
        " USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    op.execute(
        "CREATE POLICY publisher_all ON serving.lead_model_cards FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT SELECT ON serving.lead_model_cards TO bizos_reader")


def downgrade() -> None:
    op.execute("DROP TABLE serving.lead_model_cards")
