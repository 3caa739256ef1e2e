"""Every publish notifies the API processes (``NOTIFY bizos_serving, '<table>:<tenant>'``).

The API keeps each tenant's published rows in memory and drops a copy when its
table and tenant are republished (serving/change_feed.py). A trigger on
``serving.publish_log``, which every publish writes in its transaction, sends the
notification at that transaction's commit, whoever published.

Revision ID: serving_0008
Revises: serving_0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0008"
down_revision: str | None = "serving_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE FUNCTION serving.notify_publish() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('bizos_serving', NEW.table_name || ':' || NEW.tenant_id);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER publish_notify AFTER INSERT ON serving.publish_log"
        " FOR EACH ROW EXECUTE FUNCTION serving.notify_publish()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER publish_notify ON serving.publish_log")
    op.execute("DROP FUNCTION serving.notify_publish()")
