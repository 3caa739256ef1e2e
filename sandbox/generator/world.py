"""One tenant's world: who the business is and who its leads are.

Every source reads the same world, so the sources agree with each other the way
a real business's systems do: a converted CRM lead is a Stripe customer with
the same email, an inbound lead filled a form on the site first, and known
leads browse the site under their CRM id as GA4 ``userId``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandbox.crm_export import ExportLead, iter_export_leads
from sandbox.generator.core import DAY, epoch, stream

CURRENCIES = (("usd", 0.6), ("eur", 0.2), ("gbp", 0.2))
TIMEZONES = {"usd": "America/New_York", "eur": "Europe/Berlin", "gbp": "Europe/London"}
INBOUND_SOURCES = frozenset({"website", "organic_search", "paid_search", "social", "event"})

# The tables a user may size; the others follow from them (see DERIVED).
BASE_COUNTS: dict[str, int] = {
    "crm_api.leads": 200,
    "crm_api.activities": 1500,
    "stripe.customers": 150,
    "stripe.subscriptions": 100,
    "stripe.charges": 2000,
    "ga4.report_rows": 3000,
    "saleor.products": 40,
    "saleor.orders": 500,
    "cms_forms.submissions": 300,
    "ai_usage.usage": 3000,
    "sp_api.catalog_items": 300,
}
DERIVED: dict[str, str] = {
    "crm_api.companies": "one per distinct company of the leads",
    "crm_api.contacts": "one per qualified or converted lead",
    "crm_api.deals": "one per converted lead, per converting open lead, about half the qualified",
    "stripe.invoices": "one per billing period of each subscription",
    "stripe.balance_transactions": "one per succeeded charge plus one per refund",
    "saleor.variants": "one to four per product",
    "saleor.order_lines": "one to four per order",
    "sp_api.item_offers": "one per catalog item",
    "sp_api.fee_schedules": "one per catalog item",
}
TABLES: dict[str, tuple[str, ...]] = {
    "stripe": ("customers", "charges", "invoices", "subscriptions", "balance_transactions"),
    "ga4": ("report_rows",),
    "crm_api": ("leads", "contacts", "companies", "activities", "deals"),
    "saleor": ("orders", "order_lines", "products", "variants"),
    "cms_forms": ("submissions",),
    "ai_usage": ("usage",),
    "sp_api": ("catalog_items", "item_offers", "fee_schedules"),
}
SOURCES: tuple[str, ...] = tuple(TABLES)


def resolve_counts(scale: float, overrides: dict[str, int] | None) -> dict[str, int]:
    """Row counts per table for one tenant: the base counts times ``scale``, then overrides."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    counts = {name: max(1, round(base * scale)) for name, base in BASE_COUNTS.items()}
    for name, n in (overrides or {}).items():
        if name in DERIVED:
            raise ValueError(
                f"{name} cannot be sized directly: {DERIVED[name]}; size its parents instead"
            )
        if name not in BASE_COUNTS:
            known = ", ".join(sorted(BASE_COUNTS))
            raise ValueError(f"unknown table {name!r} in counts; sizable tables: {known}")
        if int(n) < 1:
            raise ValueError(f"{name}: count must be at least 1, got {n}")
        counts[name] = int(n)
    return counts


@dataclass(frozen=True)
class TenantProfile:
    tenant_id: str
    name: str
    currency: str
    timezone: str
    site: str

    @property
    def code(self) -> str:
        return self.currency.upper()


def tenant_profile(seed: int, tenant_id: str) -> TenantProfile:
    rng = stream(seed, tenant_id, "profile")
    roll, acc, currency = rng.random(), 0.0, "usd"
    for code, weight in CURRENCIES:
        acc += weight
        if roll < acc:
            currency = code
            break
    return TenantProfile(
        tenant_id=tenant_id,
        name=tenant_id.replace("-", " ").replace("_", " ").title(),
        currency=currency,
        timezone=TIMEZONES[currency],
        site=f"https://www.{tenant_id}.example.com",
    )


@dataclass
class Lead:
    """A CRM lead plus the facts the other sources need about it."""

    base: ExportLead
    created: int
    converted_at: int | None
    client_id: str
    engagement: float
    company_id: str = ""
    contact_id: str | None = None
    updated: int = 0
    activity_count: int = 0

    @property
    def id(self) -> str:
        return self.base.lead_id


@dataclass
class World:
    seed: int
    tenant_id: str
    as_of: datetime
    counts: dict[str, int]
    profile: TenantProfile
    leads: list[Lead]

    @property
    def as_of_ts(self) -> int:
        return epoch(self.as_of)

    def converted(self) -> list[Lead]:
        """Leads already won, in the order they converted."""
        won = [lead for lead in self.leads if lead.converted_at is not None]
        return sorted(won, key=lambda lead: (lead.converted_at or 0, lead.id))


def build_world(seed: int, tenant_id: str, *, as_of: datetime, counts: dict[str, int]) -> World:
    rng = stream(seed, tenant_id, "world")
    now = epoch(as_of)
    leads = []
    for base in iter_export_leads(tenant_id, leads=counts["crm_api.leads"], seed=seed, as_of=as_of):
        created = epoch(base.created)
        converted_at = None
        if base.status == "converted":
            candidate = created + rng.randrange(3 * DAY, 45 * DAY)
            converted_at = max(created, min(candidate, now - 1))
        client_id = (
            f"{rng.randrange(100_000_000, 2_147_483_647)}.{created - rng.randrange(30 * DAY)}"
        )
        engagement = 0.5 + 2.0 * base.propensity + (2.5 if base.converts else 0.0)
        leads.append(
            Lead(
                base=base,
                created=created,
                converted_at=converted_at,
                client_id=client_id,
                engagement=engagement,
            )
        )
    return World(
        seed=seed,
        tenant_id=tenant_id,
        as_of=as_of,
        counts=counts,
        profile=tenant_profile(seed, tenant_id),
        leads=leads,
    )
