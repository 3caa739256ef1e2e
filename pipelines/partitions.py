"""Partitions shared by every domain: one partition per tenant."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

from pipelines.tenancy import TENANT_ID_PATTERN, check_tenant_id

__all__ = ["TENANT_ID_PATTERN", "check_tenant_id", "tenants"]

tenants = DynamicPartitionsDefinition(name="tenants")
"""Tenants come and go at run time (a new inbox, an API sign-up), so dynamic."""
