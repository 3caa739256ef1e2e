"""Request and response models of the supplier routes (``...Public`` leaves the platform)."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.contracts.score_shape import parse_reasons_json
from serving.store import Row


class Tier(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class ReviewStatus(StrEnum):
    not_required = "not_required"
    pending = "pending"
    approved = "approved"
    lapsed = "lapsed"
    rejected = "rejected"
    info_requested = "info_requested"
    blocked = "blocked"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    request_info = "request_info"


class Verdict(StrEnum):
    not_same = "not_same"
    confirmed = "confirmed"


class RiskReasonPublic(BaseModel):
    code: str = Field(examples=["certificate_of_insurance_expired"])
    label: str
    points: int = Field(description="Signed contribution to the risk (positive adds risk)")
    evidence: str | None = Field(
        description="document:<id>#p<page>:<field>, screening:<list>/<entry>, "
        "purchase_orders:..., policy:..."
    )


class SupplierDocumentPublic(BaseModel):
    doc_type: str
    status: str = Field(description="missing, expired, expiring or valid")
    document_id: str | None = None
    file_name: str | None = None
    expiry_date: date | None = None


class SupplierRiskPublic(BaseModel):
    """A supplier's risk as last published, with its reasons and review state."""

    supplier_id: str
    legal_name: str
    country: str | None = None
    score: int | None = Field(description="Overall risk 0-100 (higher is riskier); null unknown")
    tier: Tier | None = Field(description="low, medium, high or critical; null when unknown")
    score_status: str = Field(description="scored or unknown")
    compliance_risk: int | None = None
    sanctions_risk: int | None = None
    delivery_risk: int | None = None
    country_risk: int | None = None
    concentration_risk: int | None = None
    sanctions_hit: bool
    review_status: ReviewStatus
    review_due_date: date | None = None
    last_decision: str | None = None
    last_decided_at: datetime | None = None
    risk_version: str = Field(description="Name it when posting a review decision")
    reasons: list[RiskReasonPublic]
    model_version: str
    config_version: str | None = None
    scored_at: datetime
    published_at: datetime

    @classmethod
    def fields_of(cls, row: Row) -> dict[str, Any]:
        fields = {n: row[n] for n in cls.model_fields if n in row and n not in {"reasons"}}
        fields["tier"] = row["grade"]
        fields["reasons"] = [
            RiskReasonPublic(code=r.code, label=r.label, points=r.points, evidence=r.evidence)
            for r in parse_reasons_json(row["reasons_json"])
        ]
        return fields

    @classmethod
    def from_row(cls, row: Row) -> SupplierRiskPublic:
        return cls(**cls.fields_of(row))


class SupplierRiskDetailPublic(SupplierRiskPublic):
    """One supplier's risk with the documents its compliance risk was judged on."""

    documents: list[SupplierDocumentPublic]

    @classmethod
    def from_row(cls, row: Row) -> SupplierRiskDetailPublic:
        documents = [SupplierDocumentPublic(**d) for d in json.loads(row["documents_json"])]
        return cls(**cls.fields_of(row), documents=documents)


class SupplierRiskPagePublic(BaseModel):
    items: list[SupplierRiskPublic]
    next_cursor: str | None = Field(description="Pass as `cursor`; null on the last page")


class MatchVerdictCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    list_name: str = Field(max_length=200)
    entry_id: str = Field(max_length=500)
    verdict: Verdict = Field(
        description="not_same: ruled out, never raised again for this supplier; "
        "confirmed: the same party (blocks approval)"
    )


class ReviewCreate(BaseModel):
    """A reviewer's decision on a supplier. The reviewer is the API key's holder."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    comment: str = Field(min_length=1, max_length=4000)
    risk_version: str = Field(
        max_length=64, description="The `risk_version` the reviewer saw (409 if no longer current)"
    )
    match_verdicts: list[MatchVerdictCreate] = Field(default_factory=list, max_length=100)


class ReviewPublic(BaseModel):
    decision_id: int
    supplier_id: str
    decision: Decision
    reviewer: str = Field(description="Prefix of the API key that posted the decision")
    risk_version: str
    decided_at: datetime
    replayed: bool = Field(description="True when an earlier request with this key recorded it")
