"""Partitions shared by every domain: one partition per tenant, and per tenant and
day for event data."""

from __future__ import annotations

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
)

tenants = DynamicPartitionsDefinition(name="tenants")
"""Tenants come and go at run time (a new inbox, an API sign-up), so dynamic."""

EVENTS_START_DATE = "2026-01-01"

tenant_days = MultiPartitionsDefinition(
    {
        "tenant": tenants,
        "date": DailyPartitionsDefinition(start_date=EVENTS_START_DATE, end_offset=0),
    }
)
"""Event tables (charges, page views, activities, …): one partition per tenant and
UTC day, so a day can be loaded, reloaded or backfilled on its own. The current
day is not a partition until it is over (``end_offset=0``)."""
