"""Superset's configuration for the platform (``SUPERSET_CONFIG_PATH`` points here).

Loaded by Superset inside its own virtualenv, never by the platform's. Everything
that differs between installations comes from the environment that
``bizos dashboards up`` builds (cli/dashboards.py): the metadata database and the
secret key live under ``BIZOS_HOME/superset``, so a test's home is a Superset of
its own.
"""

from __future__ import annotations

import os
from pathlib import Path

_STATE = Path(os.environ["BIZOS_SUPERSET_STATE_DIR"])

# The key that signs sessions and encrypts stored connection passwords: given by
# the operator, or generated once by the bootstrap (0600 in the state dir).
SECRET_KEY = os.environ.get("BIZOS_SUPERSET_SECRET_KEY") or (_STATE / "secret_key").read_text()
SQLALCHEMY_DATABASE_URI = os.environ.get(
    "BIZOS_SUPERSET_METADATA_URL", f"sqlite:///{_STATE / 'superset.db'}"
)

# The embedded ops database is SQLite (read-only URI); Superset refuses SQLite
# connections unless told otherwise.
PREVENT_UNSAFE_DB_CONNECTIONS = False

# Results are cached per query, and Superset's cache key includes the row-level
# filters of the user: the tests ask the same chart as two tenants' analysts in a
# row, so a filter left out of the key would show. In-process, so one server.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 3600}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 3600}
RATELIMIT_STORAGE_URI = "memory://"

# Served on localhost over plain HTTP: no HSTS or forced HTTPS.
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
SESSION_COOKIE_SECURE = False

FEATURE_FLAGS = {
    # Analysts open dashboards; they do not write SQL against the serving store.
    "ENABLE_TEMPLATE_PROCESSING": False,
    # Dashboards are opened through the analyst role the bootstrap gives them, so a
    # dashboard whose charts are all not-landed notes (no dataset) is still listed.
    "DASHBOARD_RBAC": True,
    "THUMBNAILS": False,
    "ALERT_REPORTS": False,
}
SQLLAB_CTAS_NO_LIMIT = False
ROW_LIMIT = 10000
# A chart of an analyst never waits for a worker: queries run in the web process.
GLOBAL_ASYNC_QUERIES = False
LOG_LEVEL = os.environ.get("BIZOS_SUPERSET_LOG_LEVEL", "WARNING")
