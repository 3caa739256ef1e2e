"""``serving.lead_score_history``: every scoring of a tenant's leads, behind RLS.

The API's ``/v1/leads/{lead_id}/score`` shows a lead's history newest first: the
primary key (tenant_id, lead_id, scored_at) read backwards is that order. Isolation
as for lead_scores: FORCE row-level security, ``tenant_isolation`` for
``bizos_reader`` by ``bizos.tenant_id``, ``publisher_all`` for the migrating role,
SELECT granted to ``bizos_reader``. No SECURITY DEFINER function is needed: the
publish version comes from ``serving.publish_version(table)`` (serving_0002).

Revision ID: serving_0004
Revises: serving_0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0004"
down_revision: str | None = "serving_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEAD_SCORE_HISTORY = """
CREATE TABLE serving.lead_score_history (
    tenant_id        text NOT NULL,
    lead_id          text COLLATE "C" NOT NULL,
    scored_at        timestamptz NOT NULL,
    score            integer CHECK (score BETWEEN 0 AND 100),
    score_status     text NOT NULL CHECK (score_status IN ('scored', 'unknown')),
    grade            text,
    probability      double precision,
    fit_score        integer,
    engagement_score integer,
    is_mql           boolean,
    score_model      text NOT NULL,
    model_version    text NOT NULL,
    config_version   text,
    reasons          text,
    published_at     timestamptz NOT NULL,
    CONSTRAINT lead_score_history_pkey PRIMARY KEY (tenant_id, lead_id, scored_at),
    CONSTRAINT lead_score_history_unknown_has_no_score
        CHECK ((score IS NULL) = (score_status = 'unknown'))
)
"""


def upgrade() -> None:
    op.execute(LEAD_SCORE_HISTORY)
    op.execute("ALTER TABLE serving.lead_score_history ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE serving.lead_score_history FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON serving.lead_score_history FOR SELECT TO bizos_reader"
        " USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    op.execute(
        "CREATE POLICY publisher_all ON serving.lead_score_history FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT SELECT ON serving.lead_score_history TO bizos_reader")


def downgrade() -> None:
    op.execute("DROP TABLE serving.lead_score_history")
