"""The supplier-risk serving contract: ``analytics.mart_supplier_risk`` as the API serves it.

The score shape (core/contracts/score_shape.py) with the supplier's components, its
review status and due date, the documents behind its compliance risk, and the
``risk_version`` a reviewer's decision must name. ``grade`` holds the tier.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.contracts.score_shape import SCORE_SHAPE_FIELDS, parse_reasons_json
from core.contracts.table import ContractError, RowRule, TableContract

TIERS: tuple[str, ...] = ("low", "medium", "high", "critical")
REVIEW_STATUSES: tuple[str, ...] = (
    "not_required",
    "pending",
    "approved",
    "lapsed",
    "rejected",
    "info_requested",
    "blocked",
)
SUPPLIER_RISK_COMPONENTS: tuple[str, ...] = (
    "compliance_risk",
    "sanctions_risk",
    "delivery_risk",
    "country_risk",
    "concentration_risk",
)

_SHAPE = {f.name: f for f in SCORE_SHAPE_FIELDS}

SUPPLIER_RISK_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("supplier_id", pa.string(), nullable=False),
        pa.field("legal_name", pa.string(), nullable=False),
        pa.field("country", pa.string()),
        _SHAPE["score"],
        _SHAPE["grade"],
        _SHAPE["reasons"],
        _SHAPE["score_model"],
        _SHAPE["score_status"],
        *(pa.field(c, pa.int32()) for c in SUPPLIER_RISK_COMPONENTS),
        pa.field("sanctions_hit", pa.bool_(), nullable=False),
        pa.field("review_status", pa.string(), nullable=False),
        pa.field("review_due_date", pa.date32()),
        pa.field("last_decision", pa.string()),
        pa.field("last_decision_id", pa.int64()),
        pa.field("last_decided_at", pa.timestamp("us", tz="UTC")),
        pa.field("documents_json", pa.string(), nullable=False),
        pa.field("risk_version", pa.string(), nullable=False),
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


def _scores_in_range(table: pa.Table) -> None:
    for column in ("score", *SUPPLIER_RISK_COMPONENTS):
        values = pc.drop_null(table[column])
        if len(values) and (pc.min(values).as_py() < 0 or pc.max(values).as_py() > 100):
            raise ContractError(f"{column} must be between 0 and 100")


def _reasons_parse(table: pa.Table) -> None:
    for text in table["reasons_json"].to_pylist():
        parse_reasons_json(text)


SUPPLIER_RISK = TableContract(
    name="supplier_risk",
    mart="mart_supplier_risk",
    schema=SUPPLIER_RISK_SCHEMA,
    primary_key=("tenant_id", "supplier_id"),
    order_by=("supplier_id",),
    row_rules=(
        _scores_in_range,
        _in("grade", TIERS),
        _in("review_status", REVIEW_STATUSES),
        _reasons_parse,
    ),
    description="Risk, tier, reasons and review status of a tenant's suppliers",
)
