"""Tenant ids: the one rule, used by the inbox, the CLI, partitions, credentials and the API.

A tenant id ends up in file paths, partition keys, SQL literals, Postgres settings
and log lines, so it is kept plain: lower-case letters, digits, ``-`` and ``_``,
starting with a letter or digit, at most 63 characters (a Postgres identifier).
"""

from __future__ import annotations

import re

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TENANT_ID_RULE = (
    "lower-case letters, digits, '-' or '_', at most 63 characters, starting with a letter or digit"
)


class InvalidTenantId(ValueError):
    """A string that can never be a tenant id."""


def is_tenant_id(value: object) -> bool:
    return isinstance(value, str) and TENANT_ID_PATTERN.fullmatch(value) is not None


def check_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` unchanged, or raise InvalidTenantId naming the rule."""
    if not is_tenant_id(tenant_id):
        shown = tenant_id if isinstance(tenant_id, str) and len(tenant_id) <= 80 else "<value>"
        raise InvalidTenantId(f"invalid tenant id {shown!r}: use {TENANT_ID_RULE}")
    return tenant_id  # type: ignore[return-value]
