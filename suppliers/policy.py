"""Per-tenant supplier policy: one YAML file per tenant, validated, versioned.

``config/suppliers/<tenant>.yaml`` (else ``default.yaml``) says which documents a
supplier must have and what is checked on them, the screening threshold, the
tier cut-offs and how soon each tier must be reviewed. dbt cannot read YAML, so
the policy lands as two lake tables (``suppliers/policy``, one row, and
``suppliers/required_documents``) that the risk models join; docs/suppliers.md
describes every key.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.contracts.suppliers import DOC_TYPES
from core.settings import PROJECT_ROOT
from core.tenant_config import (
    content_version,
    load_tenant_file,
    parse_yaml,
    tenant_file,
)

CONFIG_DIR = PROJECT_ROOT / "config" / "suppliers"


class SupplierPolicyError(ValueError):
    """A tenant's supplier policy is invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequiredDocument(_Strict):
    """A document every supplier must have, and what is checked on it."""

    doc_type: str
    check_name: bool = True
    """The legal name on the document must match the supplier record's (or an alias)."""
    check_number: bool = False
    """The document number must match the supplier record's ``<doc_type>_number`` column."""

    @model_validator(mode="after")
    def _known_type(self) -> RequiredDocument:
        if self.doc_type not in DOC_TYPES:
            raise ValueError(f"doc_type {self.doc_type!r} not in {list(DOC_TYPES)}")
        return self


class Tiers(_Strict):
    """Lowest overall risk (0-100) of each tier above ``low``."""

    medium: int = Field(default=25, ge=1, le=100)
    high: int = Field(default=50, ge=1, le=100)
    critical: int = Field(default=75, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if not self.medium < self.high < self.critical:
            raise ValueError(
                f"need medium < high < critical, got {self.medium}, {self.high}, {self.critical}"
            )
        return self


class ReviewDays(_Strict):
    """How many days a supplier of each tier may wait for a reviewer, and how long an
    approval holds before the supplier is reviewed again."""

    critical: int = Field(default=1, ge=0)
    high: int = Field(default=3, ge=0)
    medium: int = Field(default=14, ge=0)
    rereview: int = Field(default=365, ge=1)


class SupplierPolicy(_Strict):
    """One tenant's supplier policy (config/suppliers/<tenant>.yaml)."""

    version: int = Field(ge=1)
    required_documents: tuple[RequiredDocument, ...] = ()
    expiry_warning_days: tuple[int, ...] = (30, 14, 1)
    """A required document expiring within any of these many days is a reason."""
    sanctions_threshold: float = Field(default=0.88, gt=0, le=1)
    """A screening match scoring at least this makes the supplier critical until ruled out."""
    tiers: Tiers = Tiers()
    review_days: ReviewDays = ReviewDays()
    min_orders: int = Field(default=3, ge=1)
    """Fewer purchase orders than this: delivery risk is unknown."""
    concentration_share: float = Field(default=0.3, gt=0, le=1)
    """A supplier with at least this share of the tenant's spend is a concentration risk."""
    as_of: date | None = None
    """Evaluate expiry as of this day instead of today (tests, backdated reviews)."""

    @model_validator(mode="after")
    def _checks(self) -> SupplierPolicy:
        types = [d.doc_type for d in self.required_documents]
        if len(set(types)) != len(types):
            raise ValueError(f"required_documents: a doc_type is listed twice: {types}")
        if not self.expiry_warning_days or any(d < 1 for d in self.expiry_warning_days):
            raise ValueError("expiry_warning_days: one or more whole days, each at least 1")
        return self

    @property
    def config_version(self) -> str:
        """``v<version>-<hash of the content>``: what every risk row records."""
        return content_version(self, self.version)


def policy_path(tenant_id: str, config_dir: Path = CONFIG_DIR) -> Path:
    """The tenant's own file, else the default one."""
    return tenant_file(config_dir, tenant_id)


def parse_policy(text: str, *, where: str) -> SupplierPolicy:
    """Validate YAML text; errors name ``where`` and each bad key."""
    return parse_yaml(text, SupplierPolicy, where=where, error=SupplierPolicyError)


def load_policy(tenant_id: str, config_dir: Path = CONFIG_DIR) -> SupplierPolicy:
    """The tenant's validated supplier policy."""
    return load_tenant_file(
        config_dir, tenant_id, SupplierPolicy, what="supplier policy", error=SupplierPolicyError
    )
