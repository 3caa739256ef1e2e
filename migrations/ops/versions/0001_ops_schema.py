"""The ops tables: tenant credentials and their audit, connector state, API keys.

Frozen DDL: this revision never changes once released; a change to a table is a new
revision. ``opsdb.tables`` declares the same tables for the stores' queries.

Postgres installs from before migrations already have the credentials and connector
tables in schema ``ops`` (created by the stores on first use, with this same shape):
those tables are adopted, not re-created. Their API keys lived in
``serving_admin.api_keys``; the rows move to ``ops.api_keys`` here.

Revision ID: ops_0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _schema() -> str | None:
    return "ops" if op.get_bind().dialect.name == "postgresql" else None


def _exists(table: str, schema: str | None) -> bool:
    return sa.inspect(op.get_bind()).has_table(table, schema=schema)


def upgrade() -> None:
    schema = _schema()
    prefix = f"{schema}." if schema else ""
    if not _exists("tenant_data_keys", schema):
        op.create_table(
            "tenant_data_keys",
            sa.Column("tenant_id", sa.Text, primary_key=True),
            sa.Column("key_id", sa.Text, nullable=False),
            sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.Column("rewrapped_at", _TIME),
            schema=schema,
        )
    if not _exists("tenant_credentials", schema):
        op.create_table(
            "tenant_credentials",
            sa.Column(
                "tenant_id",
                sa.Text,
                sa.ForeignKey(f"{prefix}tenant_data_keys.tenant_id"),
                primary_key=True,
            ),
            sa.Column("source", sa.Text, primary_key=True),
            sa.Column("ciphertext", sa.LargeBinary, nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.Column("updated_at", _TIME, nullable=False),
            schema=schema,
        )
    if not _exists("credential_audit", schema):
        op.create_table(
            "credential_audit",
            sa.Column("audit_id", _AUTO_ID, sa.Identity(always=True), primary_key=True),
            sa.Column("at", _TIME, nullable=False),
            sa.Column("actor", sa.Text, nullable=False),
            sa.Column("tenant_id", sa.Text, nullable=False),
            sa.Column("source", sa.Text),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.CheckConstraint(
                "action IN ('read', 'set', 'delete', 'rotate')",
                name="credential_audit_action_check",
            ),
            sa.CheckConstraint(
                "outcome IN ('ok', 'not_found', 'refused')", name="credential_audit_outcome_check"
            ),
            schema=schema,
            sqlite_autoincrement=True,  # never reuse an audit id
        )
        op.create_index(
            "credential_audit_tenant_idx",
            "credential_audit",
            ["tenant_id", "audit_id"],
            schema=schema,
        )
    if not _exists("connector_cursors", schema):
        op.create_table(
            "connector_cursors",
            sa.Column("tenant_id", sa.Text, primary_key=True),
            sa.Column("source", sa.Text, primary_key=True),
            sa.Column("table_name", sa.Text, primary_key=True),
            sa.Column("cursor", _JSON, nullable=False),
            sa.Column("updated_at", _TIME, nullable=False),
            schema=schema,
        )
    if not _exists("load_log", schema):
        op.create_table(
            "load_log",
            sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("tenant_id", sa.Text, primary_key=True),
            sa.Column("source", sa.Text, primary_key=True),
            sa.Column("table_name", sa.Text, primary_key=True),
            sa.Column("rows_in", sa.BigInteger, nullable=False),
            sa.Column("rows_loaded", sa.BigInteger, nullable=False),
            sa.Column("rows_added", sa.BigInteger, nullable=False),
            sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
            sa.Column("cursor_before", _JSON),
            sa.Column("cursor_after", _JSON),
            sa.Column("bytes", sa.BigInteger, nullable=False),
            sa.Column("duration_s", sa.Float, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("started_at", _TIME, nullable=False),
            sa.Column("finished_at", _TIME, nullable=False),
            sa.CheckConstraint("status IN ('success', 'failed')", name="load_log_status_check"),
            schema=schema,
        )
        op.create_index(
            "load_log_tenant_idx", "load_log", ["tenant_id", "finished_at"], schema=schema
        )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("key_prefix", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME),
        schema=schema,
    )
    op.create_index("api_keys_tenant_idx", "api_keys", ["tenant_id"], schema=schema)
    if schema and _exists("api_keys", "serving_admin"):
        op.execute(
            "INSERT INTO ops.api_keys (key_hash, tenant_id, key_prefix, created_at, revoked_at)"
            " SELECT key_hash, tenant_id, key_prefix, created_at, revoked_at"
            " FROM serving_admin.api_keys"
        )
        op.drop_table("api_keys", schema="serving_admin")


def downgrade() -> None:
    schema = _schema()
    for table in (
        "api_keys",
        "load_log",
        "connector_cursors",
        "credential_audit",
        "tenant_credentials",
        "tenant_data_keys",
    ):
        op.drop_table(table, schema=schema)
