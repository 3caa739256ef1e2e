"""``bizos_dashboards``: the group role Superset's login reads the serving tables through.

Superset connects once for all analysts and filters rows per analyst with its own
row-level security (a ``tenant_id`` filter per tenant role, and a deny-all filter
for a user with no tenant), so its login must see every tenant's rows. The serving
tables FORCE row-level security, and their ``tenant_isolation`` policy is for
``bizos_reader`` (one tenant per transaction, ``bizos.tenant_id``); here each table
Superset shows gets a second, SELECT-only policy ``dashboards_read`` for
``bizos_dashboards`` with ``USING (true)``, and SELECT on it.

Why that is safe (docs/architecture.md): policies apply only to members of the role
they name, so the API's login (a member of ``bizos_reader`` only, refused otherwise
by ``serving.api_role``) is untouched; ``bizos_dashboards`` is NOLOGIN, can only
SELECT (no INSERT/UPDATE/DELETE policy or grant), is given nothing in ``serving``
but these tables, and the login made for it by ``bizos dashboards db-role`` owns
nothing, is not a superuser and cannot SET ROLE to anything else. The per-analyst
filtering is Superset's, tested through its chart data API.

Revision ID: serving_0011
Revises: serving_0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0011"
down_revision: str | None = "serving_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Roles are cluster-wide: another database (or the ops tree) may have made it already.
ENSURE_DASHBOARDS_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bizos_dashboards') THEN
        BEGIN
            CREATE ROLE bizos_dashboards NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$
"""

# The serving tables the dashboards bundle has a dataset for; publish_log (it names
# every tenant's publishes) and the version table are not among them.
TABLES = (
    "lead_scores",
    "lead_score_history",
    "lead_model_cards",
    "supplier_risk",
    "sourcing_opportunities",
    "revenue_monthly",
    "traffic_by_source",
    "ai_usage_cost",
)


def upgrade() -> None:
    op.execute(ENSURE_DASHBOARDS_ROLE)
    op.execute("GRANT USAGE ON SCHEMA serving TO bizos_dashboards")
    for name in TABLES:
        op.execute(
            f"CREATE POLICY dashboards_read ON serving.{name} FOR SELECT TO bizos_dashboards"
            " USING (true)"
        )
        op.execute(f"GRANT SELECT ON serving.{name} TO bizos_dashboards")


def downgrade() -> None:
    for name in reversed(TABLES):
        op.execute(f"REVOKE SELECT ON serving.{name} FROM bizos_dashboards")
        op.execute(f"DROP POLICY dashboards_read ON serving.{name}")
    op.execute("REVOKE USAGE ON SCHEMA serving FROM bizos_dashboards")
