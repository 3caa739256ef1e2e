"""What the API's own login role needs to read, and nothing more.

The API logs in as a member of ``bizos_reader`` (``serving.api_role``): it owns
nothing and cannot SET ROLE to the publisher. It may not read ``publish_log`` (the
log names every tenant), so two ``SECURITY DEFINER`` functions answer what it needs:

- ``serving.publish_version(table)``: the id of the latest publish of ``table`` for
  the tenant in ``bizos.tenant_id`` (the request's tenant, set with SET LOCAL), the
  API's ETag. A caller learns nothing about any other tenant.
- ``serving.last_published_at(table)``: the latest publish time of a table (or of
  any table for NULL), for /ready and "nothing published yet" answers.

Revision ID: serving_0002
Revises: serving_0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0002"
down_revision: str | None = "serving_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLISH_VERSION = """
CREATE FUNCTION serving.publish_version(p_table text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(l.id) FROM serving.publish_log l
    WHERE l.table_name = p_table AND l.tenant_id = current_setting('bizos.tenant_id', true)
$$
"""

LAST_PUBLISHED_AT = """
CREATE FUNCTION serving.last_published_at(p_table text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(l.published_at) FROM serving.publish_log l
    WHERE p_table IS NULL OR l.table_name = p_table
$$
"""


def upgrade() -> None:
    op.execute(
        "CREATE INDEX publish_log_tenant_idx ON serving.publish_log (table_name, tenant_id, id)"
    )
    op.execute(PUBLISH_VERSION)
    op.execute(LAST_PUBLISHED_AT)
    for function in ("serving.publish_version(text)", "serving.last_published_at(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO bizos_reader")
    # /ready tells a schema that is behind or ahead of the API's code.
    op.execute("GRANT SELECT ON serving.alembic_version_serving TO bizos_reader")


def downgrade() -> None:
    op.execute("REVOKE SELECT ON serving.alembic_version_serving FROM bizos_reader")
    op.execute("DROP FUNCTION serving.last_published_at(text)")
    op.execute("DROP FUNCTION serving.publish_version(text)")
    op.execute("DROP INDEX serving.publish_log_tenant_idx")
