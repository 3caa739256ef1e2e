"""Response models of the serving API (``...Public``: what leaves the platform)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from core.contracts.lead_model_cards import parse_card_json
from core.contracts.lead_scores import parse_reasons
from core.contracts.score_shape import parse_reasons_json
from serving.store import Row


class Grade(StrEnum):
    """Score band, A best."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class ScoreReasonPublic(BaseModel):
    """One reason of a score: what, in words, the points it added (or took away), the proof."""

    code: str = Field(description="Reason code (a feature or rule)", examples=["title_seniority"])
    label: str = Field(description="The reason in words", examples=["title seniority"])
    points: int = Field(description="Points this reason contributed (signed)", examples=[25])
    evidence: str | None = Field(
        default=None,
        description="The record that produced it: `<source>.<table>:<id>[#column]`",
        examples=["crm_export.leads:lead-0042#title"],
    )
    factor: str = Field(
        description="Same as `code` (the v0 name, kept for existing clients)",
        examples=["title_seniority"],
        deprecated=True,
    )


def reasons_of(row: Row) -> list[ScoreReasonPublic]:
    """Structured reasons from ``reasons_json`` (validated at publish)."""
    return [
        ScoreReasonPublic(
            code=r.code, label=r.label, points=r.points, evidence=r.evidence, factor=r.code
        )
        for r in parse_reasons_json(row.get("reasons_json"))
    ]


ScoreStatus = Literal["scored", "unknown"]


class LeadScorePublic(BaseModel):
    """A lead's current score as last published: its components, reasons and model."""

    tenant_id: str = Field(description="Tenant owning the lead (always the caller's tenant)")
    lead_id: str = Field(description="Lead id, unique within the tenant")
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    score_status: ScoreStatus = Field(
        description="`unknown`: too little is known about the lead to score it (no guess)"
    )
    score: int | None = Field(ge=0, le=100, description="Lead score, 0-100; null when unknown")
    grade: Grade | None = Field(description="Score band, A best; null when unknown")
    probability: float | None = Field(
        description="Modelled conversion probability (null for rules scores and unknown)"
    )
    fit_score: int | None = Field(description="The score from fit features alone (model only)")
    engagement_score: int | None = Field(
        description="The score from engagement features alone (model only)"
    )
    mql: bool | None = Field(
        description="Marketing-qualified: at or above the tenant's MQL threshold"
    )
    reasons: list[ScoreReasonPublic] = Field(
        description="Top reasons: the biggest positive ones first, then the biggest negative"
    )
    score_model: str = Field(
        description="What scored it: `tenant_logreg` or `tenant_boosted` (the tenant's own"
        " regression or boosted stumps), `pooled_logreg` or `rules_v0`",
        examples=["tenant_logreg"],
    )
    model_version: str = Field(description="Version of that model (see /v1/leads/model)")
    config_version: str | None = Field(description="The tenant's scoring configuration version")
    scored_at: datetime = Field(description="When the score was computed")
    created_at: datetime = Field(description="When the lead was created in the CRM")
    published_at: datetime = Field(description="When this score was published to serving")

    @classmethod
    def from_row(cls, row: Row) -> LeadScorePublic:
        """Build from a store row; ``reasons_json`` becomes structured reasons."""
        fields = {name: row[name] for name in cls.model_fields if name not in {"reasons", "mql"}}
        return cls(**fields, mql=row["is_mql"], reasons=reasons_of(row))


class ShortReasonPublic(BaseModel):
    """One reason of a past score: its code and points (the history keeps the short form)."""

    code: str = Field(examples=["title_seniority"])
    points: int = Field(examples=[25])


class LeadScoreHistoryPublic(BaseModel):
    """One past scoring of a lead."""

    scored_at: datetime = Field(description="When it was scored")
    score_status: ScoreStatus
    score: int | None = Field(ge=0, le=100)
    grade: Grade | None
    probability: float | None
    fit_score: int | None
    engagement_score: int | None
    mql: bool | None
    score_model: str
    model_version: str
    config_version: str | None
    reasons: list[ShortReasonPublic] = Field(description="Top reasons, as scored then")

    @classmethod
    def from_row(cls, row: Row) -> LeadScoreHistoryPublic:
        fields = {name: row[name] for name in cls.model_fields if name not in {"reasons", "mql"}}
        reasons = [
            ShortReasonPublic(code=r.factor, points=r.points)
            for r in parse_reasons(row.get("reasons"))
        ]
        return cls(**fields, mql=row["is_mql"], reasons=reasons)


class LeadScoreDetailPublic(LeadScorePublic):
    """A lead's current score and its history."""

    history: list[LeadScoreHistoryPublic] = Field(
        description="The lead's scorings, newest first (at most the latest 50)"
    )


class ModelFeaturePublic(BaseModel):
    """One feature of the model: its weight on the standardised value, and the scaling."""

    feature: str = Field(examples=["custom:employees"])
    kind: str = Field(description="fit, custom or engagement", examples=["custom"])
    source_column: str | None = Field(
        default=None, description="The export column it comes from (custom attributes)"
    )
    coefficient: float = Field(description="Weight on (value - mean) / scale, in log-odds")
    mean: float
    scale: float


class ModelMetricsPublic(BaseModel):
    """How a scorer did on the held-out period (the newest labelled leads)."""

    auc: float | None = Field(description="Area under the ROC curve (0.5: chance)")
    log_loss: float | None
    calibration_error: float | None = Field(
        description="Lead-weighted mean |predicted - observed| over the deciles"
    )


class CalibrationBinPublic(BaseModel):
    decile: int
    leads: int
    mean_predicted: float | None
    observed_rate: float | None


class CustomAttributePublic(BaseModel):
    """What became of one extra export column, and why."""

    attribute: str
    decision: str = Field(examples=["numeric", "categorical", "excluded"])
    reason: str | None


class LabelCountsPublic(BaseModel):
    positive: int | None
    negative: int | None
    open: int | None
    used: int | None = Field(description="Labelled leads the scoring model was fitted on")


class ModelThresholdsPublic(BaseModel):
    grade_a: int | None
    grade_b: int | None
    grade_c: int | None
    mql: int | None


class LeadModelCardPublic(BaseModel):
    """The model that scores the tenant's leads, what it learned and how well it does."""

    tenant_id: str
    score_model: str = Field(
        description="`tenant_logreg` (its own regression), `tenant_boosted` (its own boosted"
        " stumps, kept where they beat the regression on the held-out period), "
        "`pooled_logreg` or `rules_v0`",
        examples=["tenant_logreg"],
    )
    model_version: str
    config_version: str | None
    trained_at: datetime | None
    reason: str | None = Field(description="Why this model (e.g. too few labels: the rules)")
    labels: LabelCountsPublic
    train_rows: int | None
    holdout_rows: int | None
    holdout_positives: int | None
    metrics: dict[Literal["model", "rules"], ModelMetricsPublic] = Field(
        description="The model and the rules on the same held-out period"
    )
    calibration: dict[Literal["model", "rules"], list[CalibrationBinPublic]] = Field(
        description="Predicted against observed conversion by decile"
    )
    intercept: float | None
    base_score: int | None = Field(description="The score of the average lead")
    features: list[ModelFeaturePublic] = Field(description="Biggest weight first")
    custom_attributes: list[CustomAttributePublic]
    thresholds: ModelThresholdsPublic
    published_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> LeadModelCardPublic:
        """Build from a store row; the JSON columns (checked at publish) become lists."""
        calibration: dict[Literal["model", "rules"], list[CalibrationBinPublic]] = {
            "model": [],
            "rules": [],
        }
        for item in parse_card_json("calibration_json", row["calibration_json"]):
            for scorer in calibration:
                if item["scorer"] == scorer:
                    calibration[scorer].append(CalibrationBinPublic.model_validate(item))
        return cls(
            **{k: row[k] for k in _CARD_FIELDS},
            labels=LabelCountsPublic(
                positive=row["labels_positive"],
                negative=row["labels_negative"],
                open=row["labels_open"],
                used=row["labels_used"],
            ),
            metrics={
                "model": ModelMetricsPublic(
                    auc=row["auc"],
                    log_loss=row["log_loss"],
                    calibration_error=row["calibration_error"],
                ),
                "rules": ModelMetricsPublic(
                    auc=row["rules_auc"],
                    log_loss=row["rules_log_loss"],
                    calibration_error=row["rules_calibration_error"],
                ),
            },
            calibration=calibration,
            features=[
                ModelFeaturePublic.model_validate(f)
                for f in parse_card_json("features_json", row["features_json"])
            ],
            custom_attributes=[
                CustomAttributePublic.model_validate(a)
                for a in parse_card_json("custom_attributes_json", row["custom_attributes_json"])
            ],
            thresholds=ModelThresholdsPublic(
                grade_a=row["grade_a"],
                grade_b=row["grade_b"],
                grade_c=row["grade_c"],
                mql=row["mql_threshold"],
            ),
        )


_CARD_FIELDS = (
    "tenant_id",
    "score_model",
    "model_version",
    "config_version",
    "trained_at",
    "reason",
    "train_rows",
    "holdout_rows",
    "holdout_positives",
    "intercept",
    "base_score",
    "published_at",
)


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
