"""The suites of the raw source tables, derived from each connector's TableSpec.

A TableSpec already says what landing enforces row by row (declared types,
required fields, the primary key). The suite states it again over the tenant's
landed table as a whole, where it can fail in ways no single row shows (a key
landed twice by a broken merge, a column whose files disagree on its type), and
adds what the provider documents: the values an enum may take, and amounts and
counts that cannot be negative.

Only what the provider's API reference documents is listed here; a column the
provider leaves open (Stripe's balance transaction ``type`` grows every year) has
no value set, so a new value never stops a tenant's run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from connectors.landing import TableSpec
from quality.expectations import Rule, parameter
from quality.frames import type_family

ValueRule = Mapping[str, Any]

PROVIDER_VALUES: dict[tuple[str, str], dict[str, list[str]]] = {
    # https://docs.stripe.com/api/charges/object#charge_object-status
    ("stripe", "charges"): {"status": ["succeeded", "pending", "failed"]},
    # https://docs.stripe.com/api/invoices/object#invoice_object-status
    ("stripe", "invoices"): {"status": ["draft", "open", "paid", "uncollectible", "void"]},
    # https://docs.stripe.com/api/subscriptions/object#subscription_object-status
    ("stripe", "subscriptions"): {
        "status": [
            "incomplete",
            "incomplete_expired",
            "trialing",
            "active",
            "past_due",
            "canceled",
            "unpaid",
            "paused",
        ]
    },
    # Saleor's OrderStatus enum (GraphQL reference)
    ("saleor", "orders"): {
        "status": [
            "DRAFT",
            "UNCONFIRMED",
            "UNFULFILLED",
            "PARTIALLY_FULFILLED",
            "PARTIALLY_RETURNED",
            "RETURNED",
            "FULFILLED",
            "CANCELED",
            "EXPIRED",
        ]
    },
}
"""Per (source, table): column -> the values the provider documents."""

NON_NEGATIVE: dict[tuple[str, str], tuple[str, ...]] = {
    ("stripe", "charges"): ("amount", "amount_refunded"),
    ("stripe", "invoices"): ("amount_due", "amount_paid"),
    ("saleor", "order_lines"): ("quantity",),
    ("ga4", "report_rows"): ("sessions", "totalUsers", "screenPageViews", "conversions"),
    ("ai_usage", "usage"): ("input_tokens", "output_tokens"),
}
"""Amounts and counts the provider never reports below zero (Stripe's balance
transactions are signed, so they are not here)."""

CURRENCY_PATTERN = r"^[a-z]{3}$"
"""Stripe sends ISO 4217 codes in lower case."""


def suite_name(spec: TableSpec) -> str:
    return f"{spec.source}.{spec.name}"


def source_rules(spec: TableSpec, *, tenant_id: str, typed: set[str]) -> tuple[Rule, ...]:
    """The expectations of one table for one tenant's rows.

    ``typed`` names the columns holding at least one value: an all-null column
    (a field the tenant's account never fills) has no type to check."""
    rules: list[Rule] = [
        Rule(
            "expect_column_values_to_be_in_set",
            {"column": "tenant_id", "value_set": parameter("tenant_ids")},
            params={"tenant_ids": [tenant_id]},
        )
    ]
    for column, data_type in spec.columns.items():
        family = type_family(data_type)
        if family is not None and column in typed:
            rules.append(
                Rule(
                    "expect_column_values_to_be_in_type_list",
                    {"column": column, "type_list": family},
                )
            )
    for column in spec.required_fields:
        if column in spec.columns:
            rules.append(Rule("expect_column_values_to_not_be_null", {"column": column}))
    key = [c for c in spec.primary_key if c in spec.columns]
    if len(key) == 1:
        rules.append(Rule("expect_column_values_to_be_unique", {"column": key[0]}))
    elif key:
        rules.append(Rule("expect_compound_columns_to_be_unique", {"column_list": key}))
    for column, values in PROVIDER_VALUES.get((spec.source, spec.name), {}).items():
        rules.append(
            Rule("expect_column_values_to_be_in_set", {"column": column, "value_set": values})
        )
    for column in NON_NEGATIVE.get((spec.source, spec.name), ()):
        rules.append(Rule("expect_column_values_to_be_between", {"column": column, "min_value": 0}))
    if spec.source == "stripe" and "currency" in spec.columns:
        rules.append(
            Rule(
                "expect_column_values_to_match_regex",
                {"column": "currency", "regex": CURRENCY_PATTERN},
            )
        )
    return tuple(rules)


def checked_columns(spec: TableSpec) -> pa.Schema:
    """What the check reads of the lake table: the tenant and the declared fields
    (never ``_raw``, the provider's whole record, which is most of the bytes)."""
    return pa.schema([("tenant_id", pa.string()), *spec.columns.items()])
