"""Supplier review decisions, append-only, and the audit of every attempt.

``supplier_review_decisions`` holds each decision a reviewer posted (the reviewer
is the API key's prefix, the risk version and reasons they saw, their verdicts on
screening matches); rows are never updated or deleted (a trigger refuses it on
Postgres). ``supplier_review_audit`` records every attempt, refused ones too
(stale risk version, a reused idempotency key with another body).

On Postgres the API's role reaches them only through ``SECURITY DEFINER``
functions: ``ops.supplier_review_record(...)`` (checks the key and its
``reviews:write`` scope itself, so the reviewer and tenant come from the key) and
``ops.supplier_review_audit_add(...)``; decisions are read back by the pipeline,
which owns the schema.

Revision ID: ops_0003
Revises: ops_0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0003"
down_revision: str | None = "ops_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY = """
CREATE FUNCTION ops.supplier_review_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ops.%: review decisions are append-only', TG_TABLE_NAME;
END
$$
"""

# The key is checked here, not by the caller: the tenant and the reviewer come from
# the key the request carried. In this order: an idempotency key seen before
# replays its decision (or is a conflict, when the body differs); a risk version
# that is not the current one is stale; else the decision is appended. Every
# outcome is audited and returned (`outcome`), so nothing is rolled back.
RECORD = """
CREATE FUNCTION ops.supplier_review_record(
    p_key_hash text, p_supplier_id text, p_decision text, p_comment text,
    p_risk_version text, p_current_version text, p_reasons_seen jsonb,
    p_match_verdicts jsonb, p_idempotency_key text, p_request_hash text
)
RETURNS TABLE (outcome text, decision_id bigint, tenant_id text, reviewer text,
               decided_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k record;
    d record;
    v_outcome text;
BEGIN
    SELECT a.tenant_id, a.key_prefix, a.scopes, a.expires_at INTO k
    FROM ops.api_keys a WHERE a.key_hash = p_key_hash AND a.revoked_at IS NULL;
    IF NOT FOUND OR (k.expires_at IS NOT NULL AND k.expires_at <= now())
       OR NOT (' ' || k.scopes || ' ' LIKE '% reviews:write %'
               OR ' ' || k.scopes || ' ' LIKE '% admin %') THEN
        RAISE EXCEPTION 'key may not write reviews' USING ERRCODE = '42501';
    END IF;
    -- one recorder at a time per (tenant, idempotency key)
    PERFORM pg_advisory_xact_lock(hashtext(k.tenant_id || '/' || p_idempotency_key));
    SELECT r.* INTO d FROM ops.supplier_review_decisions r
    WHERE r.tenant_id = k.tenant_id AND r.idempotency_key = p_idempotency_key;
    IF FOUND THEN
        v_outcome := CASE WHEN d.request_hash = p_request_hash THEN 'replayed'
                          ELSE 'conflict' END;
    ELSIF p_risk_version IS DISTINCT FROM p_current_version THEN
        v_outcome := 'stale';
    ELSE
        INSERT INTO ops.supplier_review_decisions
            (tenant_id, supplier_id, decision, comment, reviewer, risk_version, reasons_seen,
             match_verdicts, idempotency_key, request_hash, decided_at)
        VALUES (k.tenant_id, p_supplier_id, p_decision, p_comment, k.key_prefix,
                p_risk_version, p_reasons_seen, p_match_verdicts, p_idempotency_key,
                p_request_hash, now())
        RETURNING * INTO d;
        v_outcome := 'recorded';
    END IF;
    INSERT INTO ops.supplier_review_audit
        (at, tenant_id, supplier_id, reviewer, idempotency_key, outcome, decision_id, detail)
    VALUES (now(), k.tenant_id, p_supplier_id, k.key_prefix, p_idempotency_key, v_outcome,
            CASE WHEN v_outcome IN ('recorded', 'replayed') THEN d.decision_id END,
            CASE WHEN v_outcome = 'stale'
                 THEN 'saw ' || p_risk_version || ', current ' || coalesce(p_current_version, '-')
            END);
    IF v_outcome IN ('recorded', 'replayed') THEN
        RETURN QUERY SELECT v_outcome, d.decision_id, d.tenant_id, d.reviewer, d.decided_at;
    ELSE
        RETURN QUERY SELECT v_outcome, NULL::bigint, k.tenant_id, k.key_prefix, NULL::timestamptz;
    END IF;
END
$$
"""

AUDIT_ADD = """
CREATE FUNCTION ops.supplier_review_audit_add(
    p_key_hash text, p_supplier_id text, p_idempotency_key text, p_outcome text, p_detail text
)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ops.supplier_review_audit
        (at, tenant_id, supplier_id, reviewer, idempotency_key, outcome, detail)
    SELECT now(), a.tenant_id, p_supplier_id, a.key_prefix, p_idempotency_key, p_outcome,
           p_detail
    FROM ops.api_keys a WHERE a.key_hash = p_key_hash AND a.revoked_at IS NULL
$$
"""


def _schema() -> str | None:
    return "ops" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "supplier_review_decisions",
        sa.Column("decision_id", _AUTO_ID, sa.Identity(always=True), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("supplier_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("risk_version", sa.Text, nullable=False),
        sa.Column("reasons_seen", _JSON, nullable=False),
        sa.Column("match_verdicts", _JSON, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("decided_at", _TIME, nullable=False),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject', 'request_info')",
            name="supplier_review_decisions_decision_check",
        ),
        schema=schema,
    )
    op.create_index(
        "supplier_review_decisions_idempotency_idx",
        "supplier_review_decisions",
        ["tenant_id", "idempotency_key"],
        unique=True,
        schema=schema,
    )
    op.create_index(
        "supplier_review_decisions_tenant_idx",
        "supplier_review_decisions",
        ["tenant_id", "supplier_id", "decision_id"],
        schema=schema,
    )
    op.create_table(
        "supplier_review_audit",
        sa.Column("audit_id", _AUTO_ID, sa.Identity(always=True), primary_key=True),
        sa.Column("at", _TIME, nullable=False),
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
        schema=schema,
    )
    op.create_index(
        "supplier_review_audit_tenant_idx",
        "supplier_review_audit",
        ["tenant_id", "audit_id"],
        schema=schema,
    )
    if schema is None:
        for table in ("supplier_review_decisions", "supplier_review_audit"):
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table}: append-only'); END"
                )
        return
    op.execute(APPEND_ONLY)
    for table in ("supplier_review_decisions", "supplier_review_audit"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON ops.{table} "
            "FOR EACH ROW EXECUTE FUNCTION ops.supplier_review_append_only()"
        )
    op.execute(RECORD)
    op.execute(AUDIT_ADD)
    for function in (
        "ops.supplier_review_record(text, text, text, text, text, text, jsonb, jsonb, text, text)",
        "ops.supplier_review_audit_add(text, text, text, text, text)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO bizos_reader")


def downgrade() -> None:
    schema = _schema()
    if schema is not None:
        op.execute("DROP FUNCTION ops.supplier_review_audit_add(text, text, text, text, text)")
        op.execute(
            "DROP FUNCTION ops.supplier_review_record"
            "(text, text, text, text, text, text, jsonb, jsonb, text, text)"
        )
    op.drop_table("supplier_review_audit", schema=schema)
    op.drop_table("supplier_review_decisions", schema=schema)
    if schema is not None:
        op.execute("DROP FUNCTION ops.supplier_review_append_only()")
