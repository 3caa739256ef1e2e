"""The tenant's CRM, as its REST API returns it: leads, contacts, companies, activities, deals.

Leads are the very leads of the CSV export (same ids, same values). Engagement
follows the hidden propensity: leads that will convert open and click more
emails and take more calls and meetings, so activities carry signal too.
"""

from __future__ import annotations

from typing import Any

from sandbox.generator.core import DAY, Defect, Writers, allocate, iso_z, stream
from sandbox.generator.world import INBOUND_SOURCES, Lead, World

DEFECTS: dict[str, tuple[Defect, ...]] = {
    "leads": (
        Defect("missing_field", "email", 37, 5),
        Defect("unknown_field", "x_score_v2", 41, 7),
    ),
    "contacts": (Defect("missing_field", "email", 23, 3),),
    "companies": (Defect("missing_field", "name", 19, 2),),
    "activities": (Defect("missing_field", "type", 97, 11),),
    "deals": (Defect("missing_field", "stage", 13, 1),),
}

ACTIVITY_TYPES = ("email_open", "email_click", "call", "meeting", "form_fill")
STAGES = ("discovery", "demo", "proposal", "negotiation")
DEAL_BASE = {
    "1-10": 3_000,
    "11-50": 8_000,
    "51-200": 18_000,
    "201-1000": 36_000,
    "1001-5000": 60_000,
    "5000+": 90_000,
}
SUBJECTS = {
    "email_open": (
        "Opened: {c} x our platform",
        "Opened: quick follow-up",
        "Opened: pricing overview",
    ),
    "email_click": ("Clicked: case study link", "Clicked: book a demo", "Clicked: pricing page"),
    "call": ("Discovery call", "Follow-up call", "Left voicemail"),
    "meeting": ("Product demo", "Technical deep dive", "Commercial review"),
    "form_fill": ("Submitted demo request", "Submitted contact form"),
}


def _activity_type(rng, lead: Lead) -> str:
    p = lead.base.propensity
    weights = [
        5.0,
        1.5 + 3.0 * p + (1.5 if lead.base.converts else 0),
        1.0 + (1.0 if lead.base.converts else 0),
        0.3 + 1.5 * p + (1.5 if lead.base.converts else 0),
        0.4 if lead.base.source in INBOUND_SOURCES else 0.05,
    ]
    return rng.choices(ACTIVITY_TYPES, weights=weights)[0]


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "crm_api")
    now = world.as_of_ts
    leads = world.leads

    # Companies: one per distinct company name, in order of first appearance.
    companies: dict[str, dict[str, Any]] = {}
    for lead in leads:
        name = lead.base.company
        if name not in companies:
            n = len(companies) + 1
            created = lead.created - rng.randrange(DAY, 90 * DAY)
            companies[name] = {
                "id": f"CMP-{n:05d}",
                "name": name,
                "domain": name.split()[0].lower() + ".example.com",
                "industry": lead.base.industry,
                "company_size": lead.base.company_size,
                "country": lead.base.country,
                "owner": lead.base.owner,
                "created": created,
                "updated": created,
            }
        company = companies[name]
        lead.company_id = company["id"]
        company["updated"] = max(company["updated"], lead.created)

    # Activities: their number per lead follows its engagement; the total is exact.
    per_lead = allocate(world.counts["crm_api.activities"], [lead.engagement for lead in leads])
    activities: list[dict[str, Any]] = []
    for lead, k in zip(leads, per_lead, strict=True):
        span = max(now - lead.created, 1)
        for _ in range(k):
            ts = lead.created + rng.randrange(span)
            kind = _activity_type(rng, lead)
            details: dict[str, Any] = {}
            if kind in ("email_open", "email_click"):
                details["campaign"] = lead.base.utm_campaign or rng.choice(
                    ("nurture", "newsletter")
                )
                if kind == "email_click":
                    details["url"] = rng.choice(("/pricing", "/demo", "/case-studies", "/blog"))
            elif kind == "call":
                details["duration_seconds"] = rng.choice((0, 45, 180, 420, 900, 1500))
                details["outcome"] = (
                    "no_answer" if details["duration_seconds"] == 0 else "connected"
                )
            elif kind == "meeting":
                details["duration_minutes"] = rng.choice((30, 45, 60))
                details["attendees"] = rng.randint(2, 5)
            else:
                details["form"] = rng.choice(("demo_request", "contact"))
                details["page_url"] = f"/{details['form'].replace('_', '-')}"
            subject = rng.choice(SUBJECTS[kind]).format(c=lead.base.company)
            activities.append(
                {"ts": ts, "lead": lead, "type": kind, "subject": subject, "details": details}
            )
            lead.activity_count += 1
            lead.updated = max(lead.updated, ts)
    activities.sort(key=lambda a: (a["ts"], a["lead"].id, a["type"], a["subject"]))

    # Contacts: qualified and converted leads.
    contacts: list[tuple[Lead, int, int]] = []
    for lead in leads:
        if lead.base.status not in ("qualified", "converted"):
            continue
        created = lead.converted_at or min(lead.created + rng.randrange(DAY, 20 * DAY), now - 1)
        lead.contact_id = f"CON-{len(contacts) + 1:05d}"
        updated = min(created + rng.randrange(0, 30 * DAY), now - 1)
        lead.updated = max(lead.updated, created)
        contacts.append((lead, created, max(created, updated)))

    # Deals, each with its stage history.
    deals = []
    for lead in leads:
        status, converts = lead.base.status, lead.base.converts
        if lead.converted_at is not None:
            outcome = "closed_won"
        elif converts and status in ("qualified", "contacted"):
            outcome = "open_late"
        elif status == "qualified" and rng.random() < 0.5:
            outcome = rng.choice(("closed_lost", "open_early"))
        else:
            continue
        deals.append((lead, outcome))

    w = writers
    lead_w = w.open("leads", time_column="updated")
    for lead in sorted(leads, key=lambda x: (max(x.updated, x.created), x.id)):
        b = lead.base
        lead.updated = max(lead.updated, lead.created)
        lead_w.add(
            b.lead_id,
            lead.updated,
            {
                "id": b.lead_id,
                "email": b.email,
                "first_name": b.first_name,
                "last_name": b.last_name,
                "company": b.company,
                "company_id": lead.company_id,
                "title": b.title,
                "industry": b.industry,
                "company_size": b.company_size,
                "country": b.country,
                "source": b.source,
                "status": b.status,
                "owner": b.owner,
                "utm_campaign": b.utm_campaign,
                "contact_id": lead.contact_id,
                "created_at": b.created_at,
                "updated_at": iso_z(lead.updated),
            },
        )
    w.done("leads", lead_w)

    company_w = w.open("companies", time_column="updated")
    for c in sorted(companies.values(), key=lambda c: (c["updated"], c["id"])):
        company_w.add(
            c["id"],
            c["updated"],
            {
                "id": c["id"],
                "name": c["name"],
                "domain": c["domain"],
                "industry": c["industry"],
                "company_size": c["company_size"],
                "country": c["country"],
                "owner": c["owner"],
                "created_at": iso_z(c["created"]),
                "updated_at": iso_z(c["updated"]),
            },
        )
    w.done("companies", company_w)

    contact_w = w.open("contacts", time_column="updated")
    for lead, created, updated in sorted(contacts, key=lambda c: (c[2], c[0].contact_id)):
        b = lead.base
        contact_w.add(
            lead.contact_id or "",
            updated,
            {
                "id": lead.contact_id,
                "lead_id": b.lead_id,
                "company_id": lead.company_id,
                "email": b.email,
                "first_name": b.first_name,
                "last_name": b.last_name,
                "title": b.title,
                "phone": f"+1-555-{(b.n * 7919) % 10_000:04d}",
                "lifecycle_stage": "customer" if lead.converted_at else "sales_qualified_lead",
                "owner": b.owner,
                "created_at": iso_z(created),
                "updated_at": iso_z(updated),
            },
        )
    w.done("contacts", contact_w)

    activity_w = w.open("activities", time_column="updated")
    for n, a in enumerate(activities, start=1):
        lead = a["lead"]
        aid = f"ACT-{n:07d}"
        activity_w.add(
            aid,
            a["ts"],
            {
                "id": aid,
                "type": a["type"],
                "lead_id": lead.id,
                "contact_id": lead.contact_id,
                "subject": a["subject"],
                "details": a["details"],
                "owner": lead.base.owner,
                "occurred_at": iso_z(a["ts"]),
                "created_at": iso_z(a["ts"]),
                "updated_at": iso_z(a["ts"]),
            },
        )
    w.done("activities", activity_w)

    deal_rows = []
    for n, (lead, outcome) in enumerate(deals, start=1):
        b = lead.base
        start = min(lead.created + rng.randrange(DAY, 10 * DAY), now - 4)
        end = lead.converted_at if lead.converted_at is not None else now - 1
        end = max(end, start + 4)
        if outcome == "closed_won":
            path, final = list(STAGES), "closed_won"
        elif outcome == "closed_lost":
            path, final = list(STAGES[: rng.randint(1, 3)]), "closed_lost"
        elif outcome == "open_late":
            path, final = list(STAGES[: rng.randint(3, 4)]), None
        else:
            path, final = list(STAGES[: rng.randint(1, 2)]), None
        marks = sorted(rng.randrange(start, end) for _ in range(len(path) - 1))
        entered = [start, *marks]
        history: list[dict[str, Any]] = []
        for i, stage in enumerate(path):
            exited = entered[i + 1] if i + 1 < len(path) else (end if final else None)
            history.append(
                {
                    "stage": stage,
                    "entered_at": iso_z(entered[i]),
                    "exited_at": iso_z(exited) if exited is not None else None,
                }
            )
        if final:
            history.append({"stage": final, "entered_at": iso_z(end), "exited_at": None})
        updated = end if final else entered[-1]
        amount = round(DEAL_BASE[b.company_size] * rng.uniform(0.7, 1.5), -2)
        stage = final or path[-1]
        close = end if final else min(now + rng.randrange(7 * DAY, 60 * DAY), now + 90 * DAY)
        deal_rows.append(
            (
                updated,
                f"DEA-{n:05d}",
                {
                    "id": f"DEA-{n:05d}",
                    "name": f"{b.company} - {rng.choice(('Starter', 'Pro', 'Business'))}",
                    "lead_id": b.lead_id,
                    "contact_id": lead.contact_id,
                    "company_id": lead.company_id,
                    "amount": f"{amount:.2f}",
                    "currency": world.profile.code,
                    "pipeline": "default",
                    "stage": stage,
                    "is_closed": final is not None,
                    "is_won": final == "closed_won",
                    "stage_history": history,
                    "expected_close_date": iso_z(close)[:10],
                    "owner": b.owner,
                    "created_at": iso_z(start),
                    "updated_at": iso_z(updated),
                },
            )
        )
    deal_w = w.open("deals", time_column="updated")
    for updated, did, payload in sorted(deal_rows, key=lambda d: (d[0], d[1])):
        deal_w.add(did, updated, payload)
    w.done("deals", deal_w)
