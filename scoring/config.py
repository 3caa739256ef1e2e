"""Per-tenant scoring configuration: one YAML file per tenant, validated, versioned.

``config/scoring/<tenant>.yaml`` holds a tenant's ideal customer profile, the
engagement half-life and daily caps, the grade and MQL thresholds, which custom
attributes to force in or leave out, and whether the tenant's labels may train a
pooled model. A tenant without a file gets ``config/scoring/default.yaml``. The
schema is :class:`ScoringConfig`; docs/scoring.md describes every key.

The version written beside every score is the file's own ``version`` plus a
hash of its validated content, so an edit that forgets to bump ``version`` still
shows as a new configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.settings import PROJECT_ROOT
from core.tenant_config import (
    DEFAULT_NAME,
    content_version,
    load_tenant_file,
    parse_yaml,
    tenant_file,
)

CONFIG_DIR = PROJECT_ROOT / "config" / "scoring"

TOUCH_TYPES = (
    "page_view",
    "pricing_visit",
    "form_fill",
    "email_open",
    "email_click",
    "call",
    "meeting",
)
"""Engagement touch types of int_lead_touches; each becomes one feature."""

SENIORITIES = ("c_level", "vp", "manager", "other", "missing")
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")


class ScoringConfigError(ValueError):
    """A tenant's scoring configuration is invalid; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdealCustomerProfile(_Strict):
    """Who the tenant sells to best; each match is a fit feature of its own."""

    industries: tuple[str, ...] = ()
    company_sizes: tuple[str, ...] = ()
    seniorities: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known_values(self) -> IdealCustomerProfile:
        for name, allowed in (("company_sizes", COMPANY_SIZES), ("seniorities", SENIORITIES)):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                raise ValueError(f"profile.{name}: {bad} not in {list(allowed)}")
        return self


class Engagement(_Strict):
    """Recency decay and per-day caps of the engagement features."""

    half_life_days: float = Field(default=14.0, gt=0, le=3650)
    daily_caps: dict[str, int] = Field(default_factory=dict)
    """Most touches of a type counted per day (one noisy day cannot dominate)."""
    default_daily_cap: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _known_types(self) -> Engagement:
        bad = [t for t in self.daily_caps if t not in TOUCH_TYPES]
        if bad:
            raise ValueError(
                f"engagement.daily_caps: unknown touch types {bad}; known {list(TOUCH_TYPES)}"
            )
        low = {t: c for t, c in self.daily_caps.items() if c < 1}
        if low:
            raise ValueError(f"engagement.daily_caps: caps must be at least 1, got {low}")
        return self

    def cap(self, touch_type: str) -> int:
        return self.daily_caps.get(touch_type, self.default_daily_cap)


class CustomAttributes(_Strict):
    """Which extra export columns become features (by default: every usable one)."""

    include: tuple[str, ...] = ()
    """Forced in, even when the profile would leave them out (as categorical)."""
    exclude: tuple[str, ...] = ()
    max_categories: int = Field(default=12, ge=2, le=200)
    """Text columns with more distinct values than this are left out."""

    @model_validator(mode="after")
    def _disjoint(self) -> CustomAttributes:
        both = sorted(set(self.include) & set(self.exclude))
        if both:
            raise ValueError(f"custom_attributes: {both} both included and excluded")
        return self


class Thresholds(_Strict):
    """Grade bands (minimum score of A, B, C; D below) and the MQL cut-off, on the 0-100 score."""

    grade_a: int = Field(default=60, ge=0, le=100)
    grade_b: int = Field(default=35, ge=0, le=100)
    grade_c: int = Field(default=15, ge=0, le=100)
    mql: int = Field(default=35, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.grade_a > self.grade_b > self.grade_c:
            raise ValueError(
                f"thresholds: need grade_a > grade_b > grade_c, got "
                f"{self.grade_a}, {self.grade_b}, {self.grade_c}"
            )
        return self


class Model(_Strict):
    """How the tenant's model is fitted."""

    kind: Literal["logistic_regression"] = "logistic_regression"
    regularization: float = Field(default=1.0, gt=0)
    """Inverse L2 strength (scikit-learn's C): smaller is smoother."""
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.6)
    """The newest share of labelled leads (by created_at) held out for evaluation."""
    min_labels: int = Field(default=40, ge=10)
    min_per_class: int = Field(default=8, ge=2)
    """Fewer labels (or fewer of either class) than this: pooled model or rules."""
    pooled_opt_in: bool = False
    """Whether this tenant's labelled leads may train the pooled model, and it may use it."""
    min_known_signals: int = Field(default=2, ge=0)
    """A lead with fewer known attributes and touch types than this is `unknown`."""
    try_boosting: bool = True
    """Fit gradient-boosted stumps beside the regression; kept only where they win."""
    boosting_margin: float = Field(default=0.01, ge=0, lt=0.5)
    """How much higher the held-out AUC of boosting must be for it to be kept."""
    boosting_min_leaf: int = Field(default=20, ge=1)
    """Fewest training leads on either side of a stump's split: larger is smoother."""


class ScoringConfig(_Strict):
    """One tenant's scoring configuration (config/scoring/<tenant>.yaml)."""

    version: int = Field(ge=1)
    profile: IdealCustomerProfile = IdealCustomerProfile()
    engagement: Engagement = Engagement()
    custom_attributes: CustomAttributes = CustomAttributes()
    thresholds: Thresholds = Thresholds()
    model: Model = Model()

    @property
    def config_version(self) -> str:
        """``v<version>-<hash of the content>``: what every score records."""
        return content_version(self, self.version)


def config_path(tenant_id: str, config_dir: Path = CONFIG_DIR) -> Path:
    """The tenant's own file, else the default one."""
    return tenant_file(config_dir, tenant_id)


def parse_config(text: str, *, where: str) -> ScoringConfig:
    """Validate YAML text; errors name ``where`` and each bad key."""
    return parse_yaml(text, ScoringConfig, where=where, error=ScoringConfigError)


def load_config(tenant_id: str, config_dir: Path = CONFIG_DIR) -> ScoringConfig:
    """The tenant's validated scoring configuration."""
    return load_tenant_file(
        config_dir, tenant_id, ScoringConfig, what="scoring configuration", error=ScoringConfigError
    )


def configured_tenants(config_dir: Path = CONFIG_DIR) -> list[str]:
    """Tenants with a file of their own."""
    return sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem != DEFAULT_NAME)
