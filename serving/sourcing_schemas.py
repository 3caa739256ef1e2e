"""Response models of the sourcing routes (``...Public`` leaves the platform)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from core.contracts.score_shape import parse_reasons_json
from serving.store import Row
from serving.supplier_schemas import ReviewStatus, Tier


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class OpportunityReasonPublic(BaseModel):
    code: str = Field(examples=["strong_demand", "supplier_high_risk"])
    label: str
    points: int = Field(description="Signed contribution to the opportunity score")
    evidence: str | None = Field(
        description="catalog_items:<asin> sales_rank ..., price ... - fees ... - landed cost ..., "
        "item_offers:<asin>@<day>, supplier:<id> (<review status>; <its risk reasons>)"
    )


class OpportunitySupplierPublic(BaseModel):
    """The supplier to buy from: the lowest landed cost among those not blocked."""

    supplier_id: str
    name: str | None = Field(description="Legal name; null when not in the supplier records")
    sku: str | None
    tier: Tier | None = Field(description="Its risk tier; null when not rated")
    review_status: ReviewStatus | None = Field(description="null when not in the records")
    unit_cost: float | None = Field(description="In `cost_currency`, as its price list says")
    cost_currency: str | None
    moq: int | None
    lead_time_days: int | None
    match_rule: str | None = Field(
        description="How its price list matched the item: asin, upc, ean"
    )


class SourcingOpportunityPublic(BaseModel):
    """One catalog item a supplier can supply: score, estimate and best supplier."""

    asin: str
    marketplace_id: str
    title: str | None = None
    brand: str | None = None
    category: str
    currency: str | None = Field(description="Of every amount below but unit_cost")
    score: int | None = Field(description="Opportunity 0-100 (higher is better); null unknown")
    grade: Grade | None = None
    score_status: str = Field(description="scored or unknown (no margin could be computed)")
    demand_score: int | None = None
    margin_score: int | None = None
    competition_score: int | None = None
    stability_score: int | None = None
    supplier_score: int | None = None
    confidence: str = Field(
        description="low when the estimate is weak: no sales rank, too few days of offers, "
        "or no fee estimate"
    )
    price: float | None = Field(description="Selling price (buy box, else lowest offer, else list)")
    fees_per_unit: float | None = None
    referral_rate: float | None = Field(
        description="Fees at price p: referral_rate * p + fixed_fees"
    )
    fixed_fees: float | None = None
    landed_cost: float | None = Field(description="Unit cost converted, plus freight and duty")
    margin_per_unit: float | None = None
    margin_pct: float | None = None
    roi_pct: float | None = None
    sales_rank: int | None = None
    est_monthly_units: int | None = Field(description="An estimate from the sales rank")
    est_monthly_units_low: int | None = None
    est_monthly_units_high: int | None = None
    est_monthly_revenue: float | None = None
    est_monthly_profit: float | None = Field(
        description="Margin x units x a new seller's buy-box share"
    )
    offer_count: int | None = None
    fba_offer_count: int | None = None
    buy_box_share: float | None = None
    price_cv: float | None = Field(description="Coefficient of variation of the buy-box price")
    offer_days: int
    supplier_count: int
    supplier: OpportunitySupplierPublic | None = Field(
        description="null when every supplier of the item is blocked or rejected"
    )
    review_required: bool = Field(description="The supplier needs a review before buying")
    reasons: list[OpportunityReasonPublic]
    model_version: str
    config_version: str | None = None
    scored_at: datetime
    published_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> SourcingOpportunityPublic:
        fields: dict[str, Any] = {
            n: row[n] for n in cls.model_fields if n in row and n not in {"reasons", "supplier"}
        }
        fields["reasons"] = [
            OpportunityReasonPublic(
                code=r.code, label=r.label, points=r.points, evidence=r.evidence
            )
            for r in parse_reasons_json(row["reasons_json"])
        ]
        fields["supplier"] = (
            None
            if row["supplier_id"] is None
            else OpportunitySupplierPublic(
                supplier_id=row["supplier_id"],
                name=row["supplier_name"],
                sku=row["supplier_sku"],
                tier=row["supplier_tier"],
                review_status=row["supplier_review_status"],
                unit_cost=row["unit_cost"],
                cost_currency=row["cost_currency"],
                moq=row["moq"],
                lead_time_days=row["lead_time_days"],
                match_rule=row["match_rule"],
            )
        )
        return cls(**fields)


class SourcingOpportunityPagePublic(BaseModel):
    items: list[SourcingOpportunityPublic]
    next_cursor: str | None = Field(description="Pass as `cursor`; null on the last page")
