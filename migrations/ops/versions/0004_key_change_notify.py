"""A change to an API key that a request checks notifies the API processes
(``NOTIFY bizos_api_keys, '<key hash>'``).

The API remembers the grants of the keys it has checked (serving/readers.py) and
drops one when it hears of a change to it (serving/change_feed.py); ``bizos keys
revoke`` waits until every process has (opsdb/key_changes.py). A trigger, so that
any writer is heard: the CLI, another process, an operator's UPDATE. Recording a
key's last use does not notify: a request checks nothing it changes.

Revision ID: ops_0004
Revises: ops_0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ops_0004"
down_revision: str | None = "ops_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE FUNCTION ops.notify_key_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('bizos_api_keys', OLD.key_hash);
    ELSE
        PERFORM pg_notify('bizos_api_keys', NEW.key_hash);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the embedded API watches the file itself
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER key_change_notify"
        " AFTER UPDATE OF revoked_at, expires_at, scopes, tenant_id OR DELETE ON ops.api_keys"
        " FOR EACH ROW EXECUTE FUNCTION ops.notify_key_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER key_change_notify ON ops.api_keys")
    op.execute("DROP FUNCTION ops.notify_key_change()")
