"""The Alembic environment shared by every tree: runs on the connection it is handed."""

from __future__ import annotations

from alembic import context

from migrations import Tree


def run() -> None:
    config = context.config
    connection = config.attributes["connection"]
    tree: Tree = config.attributes["tree"]
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {tree.postgres_schema}")
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=tree.version_table,
        version_table_schema=tree.postgres_schema if postgres else None,
        transaction_per_migration=True,
        render_as_batch=not postgres,
    )
    with context.begin_transaction():
        context.run_migrations()
