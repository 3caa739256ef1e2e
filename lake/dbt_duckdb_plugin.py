"""The dbt-duckdb plugin of the committed profile: makes dbt's DuckDB connection
able to read an ``s3://`` lake (``lake.duckdb_s3``). For a lake in a folder it
does nothing."""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from lake.duckdb_s3 import configure_from_env


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        configure_from_env(conn, os.environ)
