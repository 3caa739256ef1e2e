"""Serving schema: the reader role, ``serving.lead_scores`` behind row-level security,
and the publish log.

The DDL is frozen here (not generated from the contract at upgrade time) so this
revision means the same thing forever; ``tests/test_serving_migrations.py`` checks
that the table it builds matches ``core.contracts.lead_scores.LEAD_SCORES``.

Revision ID: serving_0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Roles are cluster-wide: another database on the server may have made it already.
# The migrating role must be able to SET ROLE to it (PG16 split SET out of MEMBER).
ENSURE_READER_ROLE = """
DO $$
DECLARE
    can_set boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bizos_reader') THEN
        BEGIN
            CREATE ROLE bizos_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF current_setting('server_version_num')::int >= 160000 THEN
        can_set := pg_has_role(current_user, 'bizos_reader', 'SET');
    ELSE
        can_set := pg_has_role(current_user, 'bizos_reader', 'MEMBER');
    END IF;
    IF NOT can_set THEN
        EXECUTE format('GRANT bizos_reader TO %I', current_user);
    END IF;
END
$$
"""

# lead_id is COLLATE "C" so keyset order is byte order, the same as the embedded store.
LEAD_SCORES = """
CREATE TABLE serving.lead_scores (
    tenant_id    text NOT NULL,
    lead_id      text COLLATE "C" NOT NULL,
    email        text NOT NULL,
    first_name   text,
    last_name    text,
    company      text,
    title        text,
    industry     text,
    company_size text,
    country      text,
    source       text,
    status       text,
    created_at   timestamptz NOT NULL,
    score        integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    grade        text NOT NULL,
    reasons      text,
    score_model  text NOT NULL,
    published_at timestamptz NOT NULL,
    CONSTRAINT lead_scores_pkey PRIMARY KEY (tenant_id, lead_id)
)
"""

PUBLISH_LOG = """
CREATE TABLE serving.publish_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name   text NOT NULL,
    tenant_id    text NOT NULL,
    rows         bigint NOT NULL,
    rows_replaced bigint NOT NULL,
    published_at timestamptz NOT NULL
)
"""


def upgrade() -> None:
    op.execute(ENSURE_READER_ROLE)
    op.execute("GRANT USAGE ON SCHEMA serving TO bizos_reader")
    op.execute(LEAD_SCORES)
    op.execute(
        "CREATE INDEX lead_scores_rank_idx ON serving.lead_scores (tenant_id, score DESC, lead_id)"
    )
    op.execute("ALTER TABLE serving.lead_scores ENABLE ROW LEVEL SECURITY")
    # FORCE so the owner is bound too: no code path reads all tenants by accident.
    op.execute("ALTER TABLE serving.lead_scores FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON serving.lead_scores FOR SELECT TO bizos_reader"
        " USING (tenant_id = current_setting('bizos.tenant_id', true))"
    )
    # With FORCE, the publisher (the owner) needs its own policy to replace a
    # tenant's rows. It names the migrating role, which bizos_reader is not a
    # member of, so it never applies to API reads.
    op.execute(
        "CREATE POLICY publisher_all ON serving.lead_scores FOR ALL TO CURRENT_USER"
        " USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT SELECT ON serving.lead_scores TO bizos_reader")
    # The log names every tenant: never granted to bizos_reader.
    op.execute(PUBLISH_LOG)
    op.execute(
        "CREATE INDEX publish_log_table_idx ON serving.publish_log (table_name, published_at)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE serving.publish_log")
    op.execute("DROP TABLE serving.lead_scores")
