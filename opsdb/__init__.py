"""The platform's own operational database: one engine, one set of tables, two targets.

Credentials, connector state and API keys each used to carry a SQLite copy and a
Postgres copy of the same SQL. They now share this package: the tables are declared
once (``opsdb.tables``, SQLAlchemy Core), created and changed only by the Alembic
``ops`` tree (``migrations/ops``), and reached through ``opsdb.engine``, the one place
that knows how SQLite and Postgres differ (file mode, transaction start, schema name).
"""
