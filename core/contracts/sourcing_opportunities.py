"""The sourcing-opportunity serving contract: ``analytics.mart_sourcing_opportunities``
as the API serves it.

The score shape (core/contracts/score_shape.py; ``grade`` is the A-D band) with five
components (demand, margin, competition, stability, supplier), the estimate behind
the score (price, fees, landed cost, margin, ROI, monthly units with their band,
competition, price stability) and its ``confidence``, and the best supplier with its
risk tier and whether it needs a review before buying. Money is in ``currency``.

Ordered best first: by score (unknown last), then by the supplier component (so of
two equal scores the safer supplier comes first, even at the clamp), then ASIN.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.contracts.score_shape import SCORE_SHAPE_FIELDS, parse_reasons_json
from core.contracts.table import ContractError, RowRule, TableContract

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
CONFIDENCES: tuple[str, ...] = ("high", "low")
SUPPLIER_TIERS: tuple[str, ...] = ("low", "medium", "high", "critical")
MATCH_RULES: tuple[str, ...] = ("asin", "upc", "ean")
COMPONENTS: tuple[str, ...] = (
    "demand_score",
    "margin_score",
    "competition_score",
    "stability_score",
    "supplier_score",
)
UNKNOWN_SCORE_SORTS_AS = -1
UNKNOWN_SUPPLIER_SORTS_AS = -100

_SHAPE = {f.name: f for f in SCORE_SHAPE_FIELDS}

SOURCING_OPPORTUNITIES_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("asin", pa.string(), nullable=False),
        pa.field("marketplace_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("brand", pa.string()),
        pa.field("category", pa.string(), nullable=False),
        pa.field("currency", pa.string()),
        _SHAPE["score"],
        _SHAPE["grade"],
        _SHAPE["reasons"],
        _SHAPE["score_model"],
        _SHAPE["score_status"],
        *(pa.field(c, pa.int32()) for c in COMPONENTS),
        pa.field("confidence", pa.string(), nullable=False),
        pa.field("price", pa.float64()),
        pa.field("price_basis", pa.string()),
        pa.field("fees_per_unit", pa.float64()),
        pa.field("referral_rate", pa.float64()),
        pa.field("fixed_fees", pa.float64()),
        pa.field("landed_cost", pa.float64()),
        pa.field("margin_per_unit", pa.float64()),
        pa.field("margin_pct", pa.float64()),
        pa.field("roi_pct", pa.float64()),
        pa.field("sales_rank", pa.int64()),
        pa.field("est_monthly_units", pa.int32()),
        pa.field("est_monthly_units_low", pa.int32()),
        pa.field("est_monthly_units_high", pa.int32()),
        pa.field("est_monthly_revenue", pa.float64()),
        pa.field("est_monthly_profit", pa.float64()),
        pa.field("offer_count", pa.int32()),
        pa.field("fba_offer_count", pa.int32()),
        pa.field("buy_box_share", pa.float64()),
        pa.field("price_cv", pa.float64()),
        pa.field("offer_days", pa.int32(), nullable=False),
        pa.field("supplier_count", pa.int32(), nullable=False),
        pa.field("supplier_id", pa.string()),
        pa.field("supplier_name", pa.string()),
        pa.field("supplier_sku", pa.string()),
        pa.field("supplier_tier", pa.string()),
        pa.field("supplier_review_status", pa.string()),
        pa.field("review_required", pa.bool_(), nullable=False),
        pa.field("match_rule", pa.string()),
        pa.field("unit_cost", pa.float64()),
        pa.field("cost_currency", pa.string()),
        pa.field("moq", pa.int32()),
        pa.field("lead_time_days", pa.int32()),
        _SHAPE["reasons_json"],
        _SHAPE["model_version"],
        _SHAPE["config_version"],
        _SHAPE["scored_at"],
    ]
)


def _in(column: str, allowed: tuple[str, ...]) -> RowRule:
    def rule(table: pa.Table) -> None:
        values = pc.drop_null(table[column])
        bad = pc.unique(pc.filter(values, pc.invert(pc.is_in(values, pa.array(allowed)))))
        if len(bad):
            raise ContractError(f"{column} must be one of {allowed}, got {bad.to_pylist()[:5]}")

    return rule


def _score_in_range(table: pa.Table) -> None:
    values = pc.drop_null(table["score"])
    if len(values) and (pc.min(values).as_py() < 0 or pc.max(values).as_py() > 100):
        raise ContractError("score must be between 0 and 100")


def _reasons_parse(table: pa.Table) -> None:
    for text in table["reasons_json"].to_pylist():
        parse_reasons_json(text)


SOURCING_OPPORTUNITIES = TableContract(
    name="sourcing_opportunities",
    mart="mart_sourcing_opportunities",
    schema=SOURCING_OPPORTUNITIES_SCHEMA,
    primary_key=("tenant_id", "asin"),
    order_by=("-score", "-supplier_score", "asin"),
    nulls_sort_as=(
        ("score", UNKNOWN_SCORE_SORTS_AS),
        ("supplier_score", UNKNOWN_SUPPLIER_SORTS_AS),
    ),
    row_rules=(
        _score_in_range,
        _in("grade", GRADES),
        _in("confidence", CONFIDENCES),
        _in("supplier_tier", SUPPLIER_TIERS),
        _in("match_rule", MATCH_RULES),
        _reasons_parse,
    ),
    description="Scored sourcing opportunities of a tenant, best first, with their best supplier",
)
