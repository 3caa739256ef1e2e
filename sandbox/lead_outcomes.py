"""Leads with known outcomes and a planted signal, in the shapes the lead model reads.

The rows look like the dbt models ``int_leads_labelled`` (one per lead) and
``int_lead_touches`` (touches per lead, type and day). Whether a lead converts
is drawn from a hidden logit that the generator knows exactly:

    logit = -2.2 + 1.2 * [seniority c_level or vp] + 0.8 * [industry software]
            + 0.6 * [business email] + 0.9 * z(budget_k) + 1.0 * [plan_interest enterprise]
            + 0.7 * (engagement propensity)

where ``budget_k`` and ``plan_interest`` are custom export columns, and the
engaged leads visit the pricing page and take meetings more often. Custom
columns also carry noise (a free-text note, an id, a numeric column with no
signal). The rules score (v0) knows nothing of the custom columns or the
touches, so a model that reads them should beat it. The tests, the benchmark
and ``bizos scores evaluate --synthetic`` read this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

SENIORITIES = ("c_level", "vp", "manager", "other", "missing")
INDUSTRIES = ("software", "ecommerce", "fintech", "healthcare", "retail", "education")
SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
SOURCES = ("referral", "partner", "event", "website", "paid_search", "cold_outbound")
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR")
PLANS = ("starter", "team", "enterprise")
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LeadSet:
    leads: pl.DataFrame
    touches: pl.DataFrame
    truth: np.ndarray
    """The hidden conversion probability of each lead, in ``leads`` order."""


def lead_set(
    tenant_id: str = "t-synth",
    *,
    leads: int = 3000,
    seed: int = 7,
    extra_columns: int = 0,
    open_fraction: float = 0.2,
    days: int = 365,
    budget_signal: str = "linear",
) -> LeadSet:
    """``leads`` leads created over ``days`` days up to :data:`AS_OF`; the newest
    ``open_fraction`` are open (status new/contacted/qualified), the rest carry
    their outcome (converted or unqualified). ``extra_columns`` adds that many
    noise custom columns (numeric and categorical, alternately).
    ``budget_signal``: ``linear`` (the bigger the budget, the likelier) or
    ``sweet_spot`` (likelier only within a middle band of budgets: a shape no
    straight line through the logit follows)."""
    rng = np.random.default_rng(seed)
    n = leads
    created = np.sort(rng.integers(0, days * 86400, size=n))
    created_at = [AS_OF - timedelta(seconds=int(days * 86400 - s)) for s in created]
    seniority = rng.choice(SENIORITIES, size=n, p=[0.12, 0.18, 0.3, 0.3, 0.1])
    industry = rng.choice(INDUSTRIES, size=n)
    size = rng.choice(SIZES, size=n)
    source = rng.choice(SOURCES, size=n)
    country = rng.choice(COUNTRIES, size=n)
    free_mail = rng.random(n) < 0.25
    budget = rng.lognormal(3.0, 0.8, size=n)
    plan = rng.choice(PLANS, size=n, p=[0.5, 0.3, 0.2])
    engaged = rng.random(n)
    z_budget = (np.log(budget) - 3.0) / 0.8
    logit = (
        -2.2
        + 1.2 * np.isin(seniority, ("c_level", "vp"))
        + 0.8 * (industry == "software")
        + 0.6 * ~free_mail
        + (0.9 * z_budget if budget_signal == "linear" else 2.4 * (np.abs(z_budget) < 0.5) - 0.9)
        + 1.0 * (plan == "enterprise")
        + 0.7 * (engaged * 3 - 1.5)
    )
    truth = 1 / (1 + np.exp(-logit))
    converts = rng.random(n) < truth
    n_open = int(round(n * open_fraction))
    is_open = np.zeros(n, dtype=bool)
    is_open[n - n_open :] = True
    status = np.where(converts, "converted", "unqualified").astype(object)
    status[is_open] = rng.choice(("new", "contacted", "qualified"), size=n_open)

    custom = []
    for i in range(n):
        row: dict[str, object] = {
            "budget_k": round(float(budget[i]), 1),
            "plan_interest": str(plan[i]),
            "crm_ref": f"X{seed}{i:07d}",
            "note": f"called {i % 97} times, said {'yes' if i % 3 else 'maybe'} #{i}",
            "seats": int(rng.integers(1, 500)),
        }
        for k in range(extra_columns):
            row[f"extra_{k:02d}"] = (
                round(float(rng.normal()), 3) if k % 2 == 0 else f"c{int(rng.integers(0, 6))}"
            )
        custom.append(json.dumps(row, sort_keys=True))

    # rules score without status, as int_leads_scored gives it (title, size, industry,
    # source, email, recency): it sees seniority and industry only roughly
    rules = (
        np.select(
            [
                seniority == "c_level",
                seniority == "vp",
                seniority == "manager",
                seniority == "other",
            ],
            [25, 20, 12, 5],
            0,
        )
        + np.select([np.isin(size, ("1001-5000", "5000+")), size == "201-1000"], [19, 15], 5)
        + np.where(np.isin(industry, ("software", "ecommerce", "fintech", "healthcare")), 15, 8)
        + np.select([np.isin(source, ("referral", "partner")), source == "event"], [15, 12], 5)
        + np.where(free_mail, 0, 10)
    )

    features_as_of = [
        min(AS_OF, c + timedelta(days=45)) if not o else AS_OF
        for c, o in zip(created_at, is_open, strict=True)
    ]
    lead_ids = [f"L{i:06d}" for i in range(n)]
    frame = pl.DataFrame(
        {
            "tenant_id": [tenant_id] * n,
            "lead_id": lead_ids,
            "title_seniority": seniority,
            "industry": industry,
            "company_size": size,
            "country": country,
            "source": source,
            "is_free_mail": free_mail,
            "custom_attributes": custom,
            "status": status.astype(str),
            "label": pl.Series(
                [None if o else int(c) for o, c in zip(is_open, converts, strict=True)],
                dtype=pl.Int32,
            ),
            "outcome": [
                "open" if o else ("converted" if c else "lost")
                for o, c in zip(is_open, converts, strict=True)
            ],
            "rules_score_without_status": rules.astype(np.int32),
            "created_at": created_at,
            "features_as_of": features_as_of,
        }
    )

    # touches: engaged (and converting) leads visit pricing and meet more
    rows_lead, rows_type, rows_day, rows_n = [], [], [], []
    rates = {
        "page_view": 2.0,
        "pricing_visit": 0.6,
        "email_open": 1.5,
        "email_click": 0.4,
        "meeting": 0.25,
        "form_fill": 0.1,
    }
    for i in range(n):
        start = created_at[i].date() - timedelta(days=7)
        end = features_as_of[i].date()
        span = max((end - start).days, 1)
        for touch_type, rate in rates.items():
            lam = rate * (0.3 + 2.0 * engaged[i])
            k = int(rng.poisson(lam * 3))
            for _ in range(k):
                day = start + timedelta(days=int(rng.integers(0, span + 1)))
                rows_lead.append(lead_ids[i])
                rows_type.append(touch_type)
                rows_day.append(day)
                rows_n.append(int(rng.integers(1, 4)))
    touches = (
        pl.DataFrame(
            {
                "lead_id": rows_lead,
                "touch_type": rows_type,
                "touch_date": pl.Series(rows_day, dtype=pl.Date),
                "touches": pl.Series(rows_n, dtype=pl.Int64),
            }
        )
        .group_by(["lead_id", "touch_type", "touch_date"])
        .agg(pl.col("touches").sum())
        .with_columns(
            tenant_id=pl.lit(tenant_id),
            evidence_ref=pl.concat_str(
                pl.lit("synthetic:"),
                "lead_id",
                pl.lit(":"),
                "touch_type",
                pl.lit(":"),
                pl.col("touch_date").cast(pl.String),
            ),
        )
        .sort(["lead_id", "touch_type", "touch_date"])
    )
    return LeadSet(leads=frame, touches=touches, truth=truth)


def days_ago(n: int) -> date:
    return (AS_OF - timedelta(days=n)).date()


__all__ = ["AS_OF", "LeadSet", "days_ago", "lead_set"]
