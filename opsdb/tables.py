"""Every table of the ops database, declared once for both targets.

This is what the stores query. The DDL that creates these tables is frozen in the
revisions of ``migrations/ops``; ``tests/test_migrations.py`` checks that the
migrated schema and these declarations agree on both targets, so neither drifts.

Two column types differ by dialect, and only here:
- ``UtcDateTime``: ``timestamptz`` on Postgres; fixed-width UTC text on SQLite
  (which sorts in time order), read back as an aware UTC datetime on both.
- ``JsonDocument``: ``jsonb`` on Postgres, JSON text on SQLite; SQL NULL for None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

SCHEMA = "ops"
metadata = sa.MetaData(schema=SCHEMA)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime stored in UTC; naive values are refused, not guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the ops tables store aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument: sa.types.TypeEngine[Any] = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
# An identity on Postgres; SQLite's INTEGER PRIMARY KEY is its rowid.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# -- credentials (credentials.store) --------------------------------------------------

tenant_data_keys = sa.Table(
    "tenant_data_keys",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("rewrapped_at", UtcDateTime),
)

tenant_credentials = sa.Table(
    "tenant_credentials",
    metadata,
    sa.Column(
        "tenant_id", sa.Text, sa.ForeignKey("ops.tenant_data_keys.tenant_id"), primary_key=True
    ),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

credential_audit = sa.Table(
    "credential_audit",
    metadata,
    sa.Column("audit_id", AutoId, sa.Identity(always=True), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.CheckConstraint(
        "action IN ('read', 'set', 'delete', 'rotate')", name="credential_audit_action_check"
    ),
    sa.CheckConstraint(
        "outcome IN ('ok', 'not_found', 'refused')", name="credential_audit_outcome_check"
    ),
    sa.Index("credential_audit_tenant_idx", "tenant_id", "audit_id"),
)

# -- connector state (connectors.state) -----------------------------------------------

connector_cursors = sa.Table(
    "connector_cursors",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("cursor", JsonDocument, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

load_log = sa.Table(
    "load_log",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("rows_in", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_added", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("cursor_before", JsonDocument),
    sa.Column("cursor_after", JsonDocument),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("status IN ('success', 'failed')", name="load_log_status_check"),
    sa.Index("load_log_tenant_idx", "tenant_id", "finished_at"),
)

# -- API keys (serving.keys) ----------------------------------------------------------

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("key_prefix", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    # Space-separated scopes (serving.keys.SCOPES); NULL expires_at never expires.
    sa.Column("scopes", sa.Text, nullable=False, server_default="scores:read"),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("last_used_at", UtcDateTime),
    sa.Index("api_keys_tenant_idx", "tenant_id"),
)

# -- supplier reviews (suppliers.reviews) ---------------------------------------------

supplier_review_decisions = sa.Table(
    "supplier_review_decisions",
    metadata,
    sa.Column("decision_id", AutoId, sa.Identity(always=True), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("supplier_id", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    # The API key's prefix: the holder, never a free-text name.
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("risk_version", sa.Text, nullable=False),
    # The reasons the reviewer saw, and their verdicts on screening matches.
    sa.Column("reasons_seen", JsonDocument, nullable=False),
    sa.Column("match_verdicts", JsonDocument, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(
        "decision IN ('approve', 'reject', 'request_info')",
        name="supplier_review_decisions_decision_check",
    ),
    sa.Index(
        "supplier_review_decisions_idempotency_idx", "tenant_id", "idempotency_key", unique=True
    ),
    sa.Index("supplier_review_decisions_tenant_idx", "tenant_id", "supplier_id", "decision_id"),
)

supplier_review_audit = sa.Table(
    "supplier_review_audit",
    metadata,
    sa.Column("audit_id", AutoId, sa.Identity(always=True), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("supplier_id", sa.Text, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("decision_id", sa.BigInteger),
    sa.Column("detail", sa.Text),
    sa.CheckConstraint(
        "outcome IN ('recorded', 'replayed', 'stale', 'conflict', 'refused')",
        name="supplier_review_audit_outcome_check",
    ),
    sa.Index("supplier_review_audit_tenant_idx", "tenant_id", "audit_id"),
)

# -- data-quality check results (quality.results) -------------------------------------

check_results = sa.Table(
    "check_results",
    metadata,
    sa.Column("id", AutoId, sa.Identity(always=True), primary_key=True),
    sa.Column("check_name", sa.Text, nullable=False),
    # The checked asset, as Dagster writes it: ``crm_export/leads``, ``mart_lead_scores``.
    sa.Column("asset_key", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("blocking", sa.Boolean, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("observed_value", sa.Text),
    sa.Column("details", JsonDocument),
    sa.Column("run_id", sa.Text),
    sa.Column("evaluated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("severity IN ('ERROR', 'WARN')", name="check_results_severity_check"),
    sa.Index("check_results_lookup_idx", "tenant_id", "asset_key", "check_name", "evaluated_at"),
)

# -- tenants (opsdb.tenants) ----------------------------------------------------------

# A tenant with no row here but with keys or data (installs from before ops_0006)
# counts as active: the row is what `bizos tenants` adds and what disabling changes.
tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("disabled_at", UtcDateTime),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="tenants_status_check"),
)
