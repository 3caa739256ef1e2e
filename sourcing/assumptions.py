"""Per-tenant sourcing assumptions: one YAML file per tenant, validated, versioned.

``config/sourcing/<tenant>.yaml`` (else ``default.yaml``) says which marketplace
the tenant sells in and how a supplier's unit cost becomes a landed cost there:
exchange rates into the marketplace currency, freight per kilogram and import
duty. The SP-API connector reads ``marketplace_id`` and ``keywords`` from the same
file. dbt cannot read YAML, so the assumptions land as the lake table
``price_lists/assumptions`` (a row per cost currency); docs/sourcing.md
describes every key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.settings import PROJECT_ROOT
from core.tenant_config import content_version, load_tenant_file, parse_yaml

CONFIG_DIR = PROJECT_ROOT / "config" / "sourcing"


class SourcingConfigError(ValueError):
    """A tenant's sourcing configuration is invalid; the message names the file and key."""


class SourcingAssumptions(BaseModel):
    """One tenant's sourcing configuration (config/sourcing/<tenant>.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    marketplace_id: str = Field(min_length=1, max_length=40)
    """The SP-API marketplace the tenant sells in (ATVPDKIKX0DER: amazon.com)."""
    keywords: tuple[str, ...] = ()
    """Catalog searches the SP-API connector runs for the tenant."""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    """The marketplace's currency: prices, fees and landed costs are in it."""
    fx_rates: dict[str, float] = Field(default_factory=lambda: {"USD": 1.0})
    """Units of ``currency`` per unit of each currency a price list may use; a price
    list row in a currency not listed here is quarantined."""
    freight_per_kg: float = Field(default=0.0, ge=0)
    """Freight to the marketplace's warehouse, in ``currency`` per kg of item weight."""
    duty_rate: float = Field(default=0.0, ge=0, le=1)
    """Import duty as a share of the unit cost (0.05 is 5 %)."""
    min_offer_days: int = Field(default=7, ge=1)
    """Fewer days of offer history than this: the estimate is flagged as weak."""

    @field_validator("fx_rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for code, rate in rates.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"{code!r} is not an ISO 4217 code")
            if not rate > 0:
                raise ValueError(f"rate of {code} must be positive, got {rate}")
        return rates

    @model_validator(mode="after")
    def _own_currency(self) -> SourcingAssumptions:
        if self.fx_rates.get(self.currency, 1.0) != 1.0:
            raise ValueError(f"fx_rates.{self.currency} must be 1 (it is the marketplace currency)")
        return self

    @property
    def currencies(self) -> frozenset[str]:
        """Cost currencies a price list may use."""
        return frozenset({self.currency, *self.fx_rates})

    def rate(self, currency: str) -> float:
        return 1.0 if currency == self.currency else self.fx_rates[currency]

    @property
    def config_version(self) -> str:
        return content_version(self, self.version)


def parse_assumptions(text: str, *, where: str) -> SourcingAssumptions:
    """Validate YAML text; errors name ``where`` and each bad key."""
    return parse_yaml(text, SourcingAssumptions, where=where, error=SourcingConfigError)


def load_assumptions(tenant_id: str, config_dir: Path = CONFIG_DIR) -> SourcingAssumptions:
    """The tenant's validated sourcing configuration."""
    return load_tenant_file(
        config_dir,
        tenant_id,
        SourcingAssumptions,
        what="sourcing configuration",
        error=SourcingConfigError,
    )
