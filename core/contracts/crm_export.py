"""The CRM lead export a tenant drops in its inbox: the columns of its header.

Shared by the parser (``exports``), the quality suite and the sandbox generator,
so the file the generator writes and the file the parser accepts cannot drift.
"""

from __future__ import annotations

REQUIRED_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "industry",
    "company_size",
    "country",
    "source",
    "created_at",
    "status",
)
"""The columns every export must have in its header (order is free)."""

NOT_NULL_COLUMNS: tuple[str, ...] = ("lead_id", "email", "created_at", "status")
"""Columns a row cannot be loaded without; checked by the quality suite."""

LEAD_STATUSES: tuple[str, ...] = ("new", "contacted", "qualified", "unqualified", "converted")
