"""DuckDB reading and writing an ``s3://`` lake: httpfs and an S3 secret.

httpfs comes from its pip package (``duckdb-extension-httpfs``, pinned to the
DuckDB version), loaded from the file the wheel ships, so no machine downloads
an extension at run time and none needs ``~/.duckdb``. The S3 secret is made
in memory from the standard ``AWS_*`` values each time a connection opens
(``connect_warehouse`` in Python, the plugin for dbt):
DuckDB keeps it for that connection only (not ``PERSISTENT``), and its values
are never written to a file or a log.

dbt reaches this through the profile's plugin (``lake/dbt_duckdb_plugin.py``),
which reads the values ``Settings.dbt_env()`` sets; Python code calls
``configure_s3`` with a ``Settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import duckdb_extension_httpfs

from core.settings import Settings


def httpfs_extension() -> Path:
    """The httpfs extension file of the installed wheel (for this DuckDB version)."""
    folder = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = folder / "httpfs.duckdb_extension"
    if not path.is_file():
        raise RuntimeError(
            f"no httpfs extension for DuckDB {duckdb.__version__} at {path}: install "
            f"duckdb-extension-httpfs=={duckdb.__version__} (make env)"
        )
    return path


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def secret_sql(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> str:
    """``CREATE SECRET`` for the lake's bucket. Holds the key: execute it, never log it.

    A custom endpoint (MinIO, Ceph, a test server) is addressed path-style
    (``host/bucket/key``), since such servers rarely have per-bucket DNS names;
    TLS follows the endpoint's scheme."""
    options = ["TYPE s3", f"REGION {_quote(region or 'us-east-1')}"]
    if access_key_id or secret_access_key:
        options += [
            f"KEY_ID {_quote(access_key_id or '')}",
            f"SECRET {_quote(secret_access_key or '')}",
        ]
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(
                f"AWS_ENDPOINT_URL must be http(s)://host[:port], got {endpoint_url!r}"
            )
        options += [
            f"ENDPOINT {_quote(parts.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {'true' if parts.scheme == 'https' else 'false'}",
        ]
    return f"CREATE OR REPLACE SECRET bizos_lake ({', '.join(options)})"


def configure_from_env(conn: duckdb.DuckDBPyConnection, environ: Mapping[str, str]) -> bool:
    """Ready ``conn`` for the lake ``environ`` names (``BIZOS_LAKE_DIR``, ``AWS_*``):
    nothing to do for a folder; httpfs and the secret for ``s3://``. Returns
    whether it was an S3 lake."""
    if not environ.get("BIZOS_LAKE_DIR", "").startswith("s3://"):
        return False
    conn.execute(f"LOAD {_quote(str(httpfs_extension()))}")
    conn.execute(
        secret_sql(
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            region=environ.get("AWS_REGION") or None,
            access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
        )
    )
    return True


def configure_s3(conn: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    """``configure_from_env`` with the values of ``settings`` (what dbt is given)."""
    if not settings.lake_on_s3:
        return False
    return configure_from_env(conn, settings.dbt_env())


def connect_warehouse(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the embedded warehouse that can read the lake.

    dbt's staging models are views over the lake's ``read_parquet`` globs, so on an
    ``s3://`` lake every connection that reads through them needs httpfs and the
    secret, not only dbt's."""
    conn = duckdb.connect(str(settings.warehouse_path), read_only=read_only)
    try:
        configure_s3(conn, settings)
    except BaseException:
        conn.close()
        raise
    return conn
