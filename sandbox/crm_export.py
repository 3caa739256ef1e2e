"""A deterministic generator of realistic CRM lead exports for demo tenants.

Same seed, same files, byte for byte: the demo, the tests and the benchmarks
can all name what they expect. Leads carry a hidden propensity (seniority,
company size, fit, channel) so a score that reads the right signals ranks the
leads that convert first; the ground truth is written beside the exports. A
custom column (``budget_k``) carries signal the rules cannot read.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.contracts.crm_export import REQUIRED_COLUMNS

DEMO_TENANTS: tuple[str, ...] = ("acme-robotics", "bluebird-retail", "cedar-health")
CUSTOM_COLUMNS: tuple[str, ...] = ("owner", "utm_campaign", "budget_k")
"""The export's extra columns (custom attributes): two with no signal, one planted."""

FIRST_NAMES = (
    "Ava Liam Mia Noah Zoe Ethan Chloe Lucas Priya Arjun Sofia Mateo Hana Kenji Amara Kofi "
    "Elena Ivan Fatima Omar Grace Leo Nora Sam Yuki Diego Ines Jonas Leila Marco"
).split()
LAST_NAMES = (
    "Smith Patel Garcia Kim Nguyen Müller Rossi Silva Okafor Haddad Johansson Novak Cohen "
    "Tanaka Kowalski Dubois O'Brien Schmidt Costa Ahmed Lopez Brown Singh Walker Fischer"
).split()
COMPANY_WORDS = (
    "Northwind Globex Initech Umbrella Stark Wayne Hooli Vandelay Acme Soylent Tyrell "
    "Cyberdyne Wonka Aperture Gringotts Pied Massive Dynamic Oscorp Kite"
).split()
COMPANY_SUFFIX = ("Inc", "Ltd", "GmbH", "Labs", "Group", "Systems", "Co")
TITLES = (
    ("CEO", 0.9),
    ("Founder", 0.85),
    ("CTO", 0.8),
    ("VP Sales", 0.7),
    ("VP Marketing", 0.65),
    ("Head of Operations", 0.6),
    ("Director of IT", 0.55),
    ("Marketing Manager", 0.4),
    ("Sales Manager", 0.4),
    ("Product Manager", 0.35),
    ("Engineer", 0.2),
    ("Analyst", 0.2),
    ("Intern", 0.05),
    ("", 0.1),
)
INDUSTRIES = (
    ("software", 0.8),
    ("ecommerce", 0.75),
    ("fintech", 0.7),
    ("healthcare", 0.6),
    ("manufacturing", 0.45),
    ("education", 0.35),
    ("nonprofit", 0.2),
    ("retail", 0.5),
)
SIZES = (
    ("1-10", 0.2),
    ("11-50", 0.4),
    ("51-200", 0.6),
    ("201-1000", 0.75),
    ("1001-5000", 0.8),
    ("5000+", 0.7),
)
SOURCES = (
    ("referral", 0.85),
    ("partner", 0.75),
    ("event", 0.65),
    ("website", 0.5),
    ("paid_search", 0.4),
    ("organic_search", 0.45),
    ("social", 0.3),
    ("cold_outbound", 0.15),
)
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "NG", "JP", "CA", "AU")
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")


@dataclass(frozen=True)
class GeneratedExport:
    tenant_id: str
    path: Path
    leads: int


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    return weighted[rng.randrange(len(weighted))]


@dataclass(frozen=True)
class ExportLead:
    """One lead as the tenant's CRM holds it, with its hidden propensity.

    ``email`` is the lead's real address; ``export_email`` is what the CSV
    export carries (every 29th row unusable, as real exports are).
    """

    n: int
    lead_id: str
    email: str
    export_email: str
    first_name: str
    last_name: str
    company: str
    title: str
    industry: str
    company_size: str
    country: str
    source: str
    created: datetime
    status: str
    owner: str
    utm_campaign: str
    budget_k: int
    free_mail: bool
    factors: dict[str, float]
    propensity: float
    converts: bool

    @property
    def created_at(self) -> str:
        return self.created.strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_export_leads(
    tenant_id: str,
    *,
    leads: int = 60,
    seed: int = 7,
    as_of: datetime = datetime(2026, 11, 1, tzinfo=UTC),
) -> Iterator[ExportLead]:
    """The leads of one tenant, drawn in a fixed order from one seeded stream.

    The CSV export and the sandbox's CRM REST API both read this, so the two
    ways into the CRM agree lead for lead.
    """
    rng = random.Random(f"{seed}:{tenant_id}")
    # Custom columns draw from their own stream, so adding one never moves the leads.
    custom_rng = random.Random(f"{seed}:{tenant_id}:custom")
    for n in range(1, leads + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company_name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIX)}"
        title, p_title = _pick(rng, TITLES)
        industry, p_ind = _pick(rng, INDUSTRIES)
        size, p_size = _pick(rng, SIZES)
        source, p_src = _pick(rng, SOURCES)
        free_mail = rng.random() < 0.25
        domain = (
            rng.choice(FREE_MAIL) if free_mail else company_name.split()[0].lower() + ".example.com"
        )
        local = f"{first}.{last}".lower().replace("'", "").replace("ü", "u")
        propensity = (p_title + p_ind + p_size + p_src) / 4 - (0.15 if free_mail else 0)
        converts = rng.random() < propensity**2
        created = as_of - timedelta(days=rng.randrange(0, 120), minutes=rng.randrange(1440))
        status = (
            "converted"
            if converts and rng.random() < 0.5
            else rng.choice(("new", "new", "contacted", "qualified", "unqualified"))
        )
        email = f"{local}@{domain}"
        # The planted custom signal: buyers state bigger budgets (log-normal, in k$),
        # something the rules cannot see; only a model that reads custom columns can.
        budget_k = max(1, round(math.exp(custom_rng.gauss(3.0 + (0.9 if converts else 0), 0.7))))
        yield ExportLead(
            n=n,
            lead_id=f"{tenant_id[:3].upper()}-{n:05d}",
            email=email,
            # Real exports carry the odd unusable row; the demo shows it quarantined.
            export_email="n/a" if n % 29 == 0 else email,
            first_name=first,
            last_name=last,
            company=company_name,
            title=title,
            industry=industry,
            company_size=size,
            country=rng.choice(COUNTRIES),
            source=source,
            created=created,
            status=status,
            owner=rng.choice(("alex", "sam", "jordan")),
            utm_campaign=rng.choice(("", "q4-webinar", "spring")),
            budget_k=budget_k,
            free_mail=free_mail,
            factors={
                "title": p_title,
                "industry": p_ind,
                "company_size": p_size,
                "source": p_src,
                "free_mail_penalty": 0.15 if free_mail else 0.0,
            },
            propensity=propensity,
            converts=converts,
        )


def generate_crm_export(
    inbox_dir: Path,
    tenant_id: str,
    *,
    leads: int = 60,
    seed: int = 7,
    as_of: datetime = datetime(2026, 11, 1, tzinfo=UTC),
) -> GeneratedExport:
    """Write ``<inbox>/<tenant>/crm/leads_export.csv`` and its ground truth."""
    out_dir = inbox_dir / tenant_id / "crm"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "leads_export.csv"
    truth: dict[str, dict[str, object]] = {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*REQUIRED_COLUMNS, *CUSTOM_COLUMNS])
        for lead in iter_export_leads(tenant_id, leads=leads, seed=seed, as_of=as_of):
            writer.writerow(
                [
                    lead.lead_id,
                    lead.export_email,
                    lead.first_name,
                    lead.last_name,
                    lead.company,
                    lead.title,
                    lead.industry,
                    lead.company_size,
                    lead.country,
                    lead.source,
                    lead.created_at,
                    lead.status,
                    lead.owner,
                    lead.utm_campaign,
                    lead.budget_k,
                ]
            )
            truth[lead.lead_id] = {
                "converts": lead.converts,
                "propensity": round(lead.propensity, 4),
            }
    (out_dir.parent / ".ground_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    # The file is complete: date it back past the inbox's settle window (which
    # holds files still being uploaded), so a run right after generating reads it.
    settled = time.time() - 60
    os.utime(path, (settled, settled))
    return GeneratedExport(tenant_id=tenant_id, path=path, leads=leads)


def generate_demo_exports(
    inbox_dir: Path, *, tenants: tuple[str, ...] = DEMO_TENANTS, leads: int = 60, seed: int = 7
) -> list[GeneratedExport]:
    return [generate_crm_export(inbox_dir, t, leads=leads, seed=seed) for t in tenants]
