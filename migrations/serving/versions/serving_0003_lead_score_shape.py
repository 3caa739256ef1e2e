"""``serving.lead_scores`` carries the whole score shape of ``mart_lead_scores`` (issue 7).

Adds score_status, probability, fit_score, engagement_score, is_mql, reasons_json,
model_version, config_version and scored_at, and lets score and grade be null (an
unknown lead: no guess). The table is rebuilt rather than altered so its columns
keep the contract's order (``ADD COLUMN`` would put them after ``published_at``);
rows already published are kept, as rules scores (what v0 published) scored at their
publish time. A tenant's next publish replaces them with the mart's.

The API orders by ``COALESCE(score, -1) DESC, lead_id`` (unknown last,
``core.contracts.lead_scores.UNKNOWN_SCORE_SORTS_AS``); the rank index is on the
same expression so a page is an index range.

Frozen DDL, like serving_0001; ``tests/test_serving_migrations.py`` holds the result
to the contract and upgrades a database published at serving_0002.

Revision ID: serving_0003
Revises: serving_0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0003"
down_revision: str | None = "serving_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEAD_SCORES = """
CREATE TABLE serving.lead_scores_next (
    tenant_id        text NOT NULL,
    lead_id          text COLLATE "C" NOT NULL,
    email            text NOT NULL,
    first_name       text,
    last_name        text,
    company          text,
    title            text,
    industry         text,
    company_size     text,
    country          text,
    source           text,
    status           text,
    created_at       timestamptz NOT NULL,
    score            integer CHECK (score BETWEEN 0 AND 100),
    grade            text,
    reasons          text,
    score_model      text NOT NULL,
    score_status     text NOT NULL CHECK (score_status IN ('scored', 'unknown')),
    probability      double precision,
    fit_score        integer,
    engagement_score integer,
    is_mql           boolean,
    reasons_json     text NOT NULL,
    model_version    text NOT NULL,
    config_version   text,
    scored_at        timestamptz NOT NULL,
    published_at     timestamptz NOT NULL,
    CONSTRAINT lead_scores_unknown_has_no_score
        CHECK ((score IS NULL) = (score_status = 'unknown'))
)
"""

COPY_V0_ROWS = """
INSERT INTO serving.lead_scores_next (
    tenant_id, lead_id, email, first_name, last_name, company, title, industry,
    company_size, country, source, status, created_at, score, grade, reasons, score_model,
    score_status, is_mql, reasons_json, model_version, scored_at, published_at
)
SELECT
    tenant_id, lead_id, email, first_name, last_name, company, title, industry,
    company_size, country, source, status, created_at, score, grade, reasons, score_model,
    'scored', grade IN ('A', 'B'), '[]', score_model, published_at, published_at
FROM serving.lead_scores
"""


def _secure(table: str) -> None:
    """RLS, policies and the grant, exactly as serving_0001 gave lead_scores."""
    op.execute(f"ALTER TABLE serving.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE serving.{table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON serving.{table} FOR SELECT TO bizos_reader"
        " USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    op.execute(
        f"CREATE POLICY publisher_all ON serving.{table} FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT ON serving.{table} TO bizos_reader")


def upgrade() -> None:
    op.execute(LEAD_SCORES)
    op.execute(COPY_V0_ROWS)
    op.execute("DROP TABLE serving.lead_scores")
    op.execute("ALTER TABLE serving.lead_scores_next RENAME TO lead_scores")
    op.execute(
        "ALTER TABLE serving.lead_scores ADD CONSTRAINT lead_scores_pkey"
        " PRIMARY KEY (tenant_id, lead_id)"
    )
    op.execute(
        "CREATE INDEX lead_scores_rank_idx ON serving.lead_scores"
        " (tenant_id, (COALESCE(score, -1)) DESC, lead_id)"
    )
    op.execute(
        "CREATE INDEX lead_scores_scored_at_idx ON serving.lead_scores (tenant_id, scored_at)"
    )
    _secure("lead_scores")


def downgrade() -> None:
    # Unknown leads have no v0 score: they cannot go back into a table that needs one.
    op.execute("DELETE FROM serving.lead_scores WHERE score IS NULL")
    op.execute("ALTER TABLE serving.lead_scores DROP CONSTRAINT lead_scores_unknown_has_no_score")
    for column in (
        "score_status",
        "probability",
        "fit_score",
        "engagement_score",
        "is_mql",
        "reasons_json",
        "model_version",
        "config_version",
        "scored_at",
    ):
        op.execute(f"ALTER TABLE serving.lead_scores DROP COLUMN {column}")
    op.execute("ALTER TABLE serving.lead_scores ALTER COLUMN score SET NOT NULL")
    op.execute("ALTER TABLE serving.lead_scores ALTER COLUMN grade SET NOT NULL")
    op.execute("DROP INDEX serving.lead_scores_rank_idx")
    op.execute("DROP INDEX serving.lead_scores_scored_at_idx")
    op.execute(
        "CREATE INDEX lead_scores_rank_idx ON serving.lead_scores (tenant_id, score DESC, lead_id)"
    )
