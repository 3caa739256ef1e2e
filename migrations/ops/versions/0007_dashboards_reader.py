"""``bizos_dashboards`` may read the two ops tables the platform-health dashboard shows.

Platform health reads ``ops.load_log`` and ``ops.check_results`` directly (small,
always current, already keyed by ``tenant_id``; Superset's per-tenant row filter
applies to them as to the serving tables). The role gets SELECT on those two tables
and USAGE on the schema, nothing else of ``ops``: not the API keys, tenants,
credentials or review tables. Postgres only (the embedded ops store is a SQLite
file Superset opens read-only). See serving_0011 for the role.

Revision ID: ops_0007
Revises: ops_0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ops_0007"
down_revision: str | None = "ops_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same idempotent block as serving_0011: either tree may run first.
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

TABLES = ("load_log", "check_results")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ENSURE_DASHBOARDS_ROLE)
    op.execute("GRANT USAGE ON SCHEMA ops TO bizos_dashboards")
    for name in TABLES:
        op.execute(f"GRANT SELECT ON ops.{name} TO bizos_dashboards")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TABLES:
        op.execute(f"REVOKE SELECT ON ops.{name} FROM bizos_dashboards")
    op.execute("REVOKE USAGE ON SCHEMA ops FROM bizos_dashboards")
