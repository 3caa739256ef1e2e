"""Tenants get a row of their own: active or disabled.

``ops.tenants`` is what ``bizos tenants add|disable|remove`` keeps. A disabled
tenant's API keys stop working at once: on Postgres the API's key lookup
``ops.api_key_find`` (ops_0002) is replaced by one that also asks the tenant's
status; embedded, ``serving.keys.find_grant`` joins the same table. A tenant with
no row (every tenant of an install made before this revision) counts as active,
so upgrading changes no key's answer.

Revision ID: ops_0006
Revises: ops_0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ops_0006"
down_revision: str | None = "ops_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)

KEY_FIND_WITH_STATUS = """
CREATE OR REPLACE FUNCTION ops.api_key_find(p_hash text)
RETURNS TABLE (tenant_id text, key_prefix text, scopes text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.tenant_id, k.key_prefix, k.scopes, k.expires_at
    FROM ops.api_keys k
    LEFT JOIN ops.tenants t ON t.tenant_id = k.tenant_id
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
      AND (t.status IS NULL OR t.status = 'active')
$$
"""

KEY_FIND_BEFORE = """
CREATE OR REPLACE FUNCTION ops.api_key_find(p_hash text)
RETURNS TABLE (tenant_id text, key_prefix text, scopes text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.tenant_id, k.key_prefix, k.scopes, k.expires_at
    FROM ops.api_keys k
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
$$
"""


TENANT_NOTIFY = """
CREATE FUNCTION ops.notify_tenant_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The API processes keep checked keys in memory (ops_0004): a tenant's status is
    -- part of every one of its keys' grants.
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('bizos_api_keys', 'tenant:' || OLD.tenant_id);
    ELSE
        PERFORM pg_notify('bizos_api_keys', 'tenant:' || NEW.tenant_id);
    END IF;
    RETURN NULL;
END
$$
"""


def _schema() -> str | None:
    return "ops" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("disabled_at", _TIME),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="tenants_status_check"),
        schema=schema,
    )
    if schema is not None:
        # CREATE OR REPLACE keeps the function's grants (EXECUTE to bizos_reader).
        op.execute(KEY_FIND_WITH_STATUS)
        op.execute(TENANT_NOTIFY)
        op.execute(
            "CREATE TRIGGER tenant_change_notify"
            " AFTER INSERT OR DELETE OR UPDATE OF status ON ops.tenants"
            " FOR EACH ROW EXECUTE FUNCTION ops.notify_tenant_change()"
        )


def downgrade() -> None:
    schema = _schema()
    if schema is not None:
        op.execute("DROP TRIGGER tenant_change_notify ON ops.tenants")
        op.execute("DROP FUNCTION ops.notify_tenant_change()")
        op.execute(KEY_FIND_BEFORE)
    op.drop_table("tenants", schema=schema)
