"""Serving contracts of the revenue and traffic marts (dbt/models/marts/revenue).

Three small aggregate tables the revenue-and-traffic dashboard reads: Stripe revenue
per month and currency (amounts in the currency's minor unit, as Stripe reports
them), GA4 traffic per day and source/medium, and AI usage cost per month, model and
feature. Every key column is non-null (the marts write '(none)' for a missing part),
so keyset order is total.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.contracts.table import ContractError, RowRule, TableContract


def _not_negative(*columns: str) -> RowRule:
    def rule(table: pa.Table) -> None:
        for column in columns:
            values = pc.drop_null(table[column])
            if len(values) and pc.min(values).as_py() < 0:
                raise ContractError(f"{column} must not be negative")

    return rule


REVENUE_MONTHLY = TableContract(
    name="revenue_monthly",
    mart="mart_revenue_monthly",
    schema=pa.schema(
        [
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("month", pa.date32(), nullable=False),
            pa.field("currency", pa.string(), nullable=False),
            pa.field("charges", pa.int64(), nullable=False),
            pa.field("gross_amount", pa.int64(), nullable=False),
            pa.field("refunded_amount", pa.int64(), nullable=False),
            pa.field("fee_amount", pa.int64(), nullable=False),
            pa.field("net_amount", pa.int64(), nullable=False),
        ]
    ),
    primary_key=("tenant_id", "month", "currency"),
    order_by=("-month", "currency"),
    row_rules=(_not_negative("charges", "gross_amount", "refunded_amount", "fee_amount"),),
    description="Stripe revenue per month and currency, in the currency's minor unit",
)

TRAFFIC_BY_SOURCE = TableContract(
    name="traffic_by_source",
    mart="mart_traffic_by_source",
    schema=pa.schema(
        [
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("report_date", pa.date32(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("medium", pa.string(), nullable=False),
            pa.field("sessions", pa.int64(), nullable=False),
            pa.field("conversions", pa.int64(), nullable=False),
            pa.field("page_views", pa.int64(), nullable=False),
        ]
    ),
    primary_key=("tenant_id", "report_date", "source", "medium"),
    order_by=("-report_date", "source", "medium"),
    row_rules=(_not_negative("sessions", "conversions", "page_views"),),
    description="GA4 sessions, conversions and page views per day and source/medium",
)

AI_USAGE_COST = TableContract(
    name="ai_usage_cost",
    mart="mart_ai_usage_cost",
    schema=pa.schema(
        [
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("month", pa.date32(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            pa.field("feature", pa.string(), nullable=False),
            pa.field("requests", pa.int64(), nullable=False),
            pa.field("input_tokens", pa.int64(), nullable=False),
            pa.field("output_tokens", pa.int64(), nullable=False),
            pa.field("cost_usd", pa.float64(), nullable=False),
        ]
    ),
    primary_key=("tenant_id", "month", "model", "feature"),
    order_by=("-month", "model", "feature"),
    row_rules=(_not_negative("requests", "input_tokens", "output_tokens", "cost_usd"),),
    description="AI requests, tokens and cost in USD per month, model and feature",
)
