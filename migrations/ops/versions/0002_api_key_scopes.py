"""API keys get scopes, an expiry and a last-used time; the API reads them through
two functions instead of the table.

The API logs in as its own role (a member of ``bizos_reader``, see
``serving.api_role``), which must never read ``ops.api_keys`` (every tenant's key
hashes). On Postgres it gets two ``SECURITY DEFINER`` functions instead:
``ops.api_key_find(hash)`` answers for one hash (the caller must hold the key), and
``ops.api_key_touch(hash)`` records its last use. Embedded (SQLite) has no roles:
the API process reads the file itself.

Existing keys keep working with ``scores:read`` (what they could do before).

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ops_0002"
down_revision: str | None = "ops_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same idempotent block as serving_0001: this tree may run first on a new database.
ENSURE_READER_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bizos_reader') THEN
        BEGIN
            CREATE ROLE bizos_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$
"""

KEY_FIND = """
CREATE FUNCTION ops.api_key_find(p_hash text)
RETURNS TABLE (tenant_id text, key_prefix text, scopes text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.tenant_id, k.key_prefix, k.scopes, k.expires_at
    FROM ops.api_keys k
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
$$
"""

KEY_TOUCH = """
CREATE FUNCTION ops.api_key_touch(p_hash text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ops.api_keys SET last_used_at = now()
    WHERE key_hash = p_hash AND revoked_at IS NULL
$$
"""


def _schema() -> str | None:
    return "ops" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    with op.batch_alter_table("api_keys", schema=schema) as batch:
        batch.add_column(sa.Column("scopes", sa.Text, nullable=False, server_default="scores:read"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True)))
    if schema is None:
        return
    op.execute(ENSURE_READER_ROLE)
    op.execute(KEY_FIND)
    op.execute(KEY_TOUCH)
    for function in ("ops.api_key_find(text)", "ops.api_key_touch(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO bizos_reader")
    # USAGE lets the reader name the functions; the tables stay ungranted.
    op.execute("GRANT USAGE ON SCHEMA ops TO bizos_reader")
    op.execute("GRANT SELECT ON ops.alembic_version_ops TO bizos_reader")


def downgrade() -> None:
    schema = _schema()
    if schema is not None:
        op.execute("REVOKE SELECT ON ops.alembic_version_ops FROM bizos_reader")
        op.execute("REVOKE USAGE ON SCHEMA ops FROM bizos_reader")
        op.execute("DROP FUNCTION ops.api_key_touch(text)")
        op.execute("DROP FUNCTION ops.api_key_find(text)")
    with op.batch_alter_table("api_keys", schema=schema) as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
