"""Response models of the serving API (``...Public``: what leaves the platform)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from core.contracts.lead_scores import parse_reasons
from serving.store import Row


class Grade(StrEnum):
    """Score band, A best."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class ScoreReasonPublic(BaseModel):
    """One factor of a score and the points it added (or took away)."""

    factor: str = Field(description="Scoring factor", examples=["title_seniority"])
    points: int = Field(description="Points this factor contributed", examples=[25])


class LeadScorePublic(BaseModel):
    """A lead's current score as last published, with the reasons behind it."""

    tenant_id: str = Field(description="Tenant owning the lead (always the caller's tenant)")
    lead_id: str = Field(description="Lead id, unique within the tenant")
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    score: int = Field(ge=0, le=100, description="Lead score, 0-100")
    grade: Grade = Field(description="Score band, A best")
    reasons: list[ScoreReasonPublic] = Field(
        description="Top factors behind the score, highest first",
        examples=[[{"factor": "title_seniority", "points": 25}]],
    )
    score_model: str = Field(description="Model that produced the score", examples=["rules_v0"])
    created_at: datetime = Field(description="When the lead was created in the CRM")
    published_at: datetime = Field(description="When this score was published to serving")

    @classmethod
    def from_row(cls, row: Row) -> LeadScorePublic:
        """Build from a store row; ``reasons`` text becomes structured factors."""
        fields = {name: row[name] for name in cls.model_fields if name != "reasons"}
        reasons = [
            ScoreReasonPublic(factor=r.factor, points=r.points)
            for r in parse_reasons(row.get("reasons"))
        ]
        return cls(**fields, reasons=reasons)


class LeadScorePagePublic(BaseModel):
    """One page of lead scores, best first."""

    items: list[LeadScorePublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page"
    )


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    """Whether the API can serve data now, and how fresh it is."""

    status: Literal["ready", "not_ready"]
    store: Literal["postgres", "duckdb"]
    last_published_at: datetime | None = Field(
        default=None, description="Time of the latest publish to the serving store"
    )
    detail: str | None = Field(default=None, description="Why the API is not ready")


class ProblemPublic(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(default="about:blank", description="Problem type; about:blank here")
    title: str = Field(description="HTTP status phrase")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="What went wrong, for a human")
    instance: str = Field(description="The request path")
    request_id: str = Field(description="Quote it when reporting a problem; also X-Request-ID")
    errors: list[dict[str, object]] | None = Field(
        default=None, description="Where the input was invalid (validation errors only)"
    )
