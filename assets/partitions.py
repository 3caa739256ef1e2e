"""Partitions shared by every domain: one partition per tenant.

There is no day partition: a day-partition start date caps how far back a
source's history can go, and a backfill over tenants x days splits into one run
per partition. Source tables load from their cursors (the first load reads the
whole history) and a span is reloaded with a window given as run config
(``assets.sources.SourceLoadConfig``)."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

tenants = DynamicPartitionsDefinition(name="tenants")
"""Tenants come and go at run time (a new inbox, an API sign-up), so dynamic."""
