"""Tenant ids: the one rule, importable without Dagster (connectors, serving, CLI)."""

from __future__ import annotations

import re

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_tenant_id(tenant_id: str) -> str:
    """Tenant ids end up in paths, partition keys and SQL literals: keep them plain."""
    if not TENANT_ID_PATTERN.match(tenant_id):
        raise ValueError(
            f"invalid tenant id {tenant_id!r}: use lower-case letters, digits, '-' or '_' "
            "(at most 63 characters, starting with a letter or digit)"
        )
    return tenant_id
