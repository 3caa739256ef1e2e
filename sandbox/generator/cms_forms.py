"""Form submissions from the tenant's content site: the inbound leads.

Inbound CRM leads (website, search, social, event) filled a demo-request or
contact form minutes before the CRM created them, with the same email; the rest
are newsletter sign-ups and enquiries from people the CRM never saw.
"""

from __future__ import annotations

from typing import Any

from sandbox.crm_export import COMPANY_SUFFIX, COMPANY_WORDS, FIRST_NAMES, FREE_MAIL, LAST_NAMES
from sandbox.generator.core import DAY, Defect, Writers, daily_counts, day_start, iso_z, stream
from sandbox.generator.world import INBOUND_SOURCES, World

DEFECTS: dict[str, tuple[Defect, ...]] = {
    "submissions": (
        Defect("missing_field", "email", 31, 4),
        Defect("unknown_field", "captcha_score", 43, 9),
    ),
}
UTM_BY_SOURCE = {
    "paid_search": ("google", "cpc", "brand-search"),
    "organic_search": ("google", "organic", None),
    "social": ("linkedin", "social", "thought-leadership"),
    "event": ("event", "qr", "expo-booth"),
    "website": (None, None, None),
}
FORM_PAGES = {"contact": "/contact", "demo_request": "/demo", "newsletter": "/blog"}
WINDOW_DAYS = 180


def _uuid(rng) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "cms_forms")
    site = world.profile.site
    total = world.counts["cms_forms.submissions"]
    rows: list[tuple[int, str, dict[str, Any]]] = []

    for lead in world.leads:
        if len(rows) >= total:
            break
        b = lead.base
        if b.source not in INBOUND_SOURCES:
            continue
        ts = max(lead.created - rng.randrange(60, 1800), 0)
        form = "demo_request" if rng.random() < 0.6 else "contact"
        utm = UTM_BY_SOURCE[b.source]
        sid = _uuid(rng)
        rows.append(
            (
                ts,
                sid,
                {
                    "id": sid,
                    "form_type": form,
                    "email": b.email,
                    "name": f"{b.first_name} {b.last_name}",
                    "company": b.company,
                    "page_url": site + FORM_PAGES[form],
                    "submitted_at": iso_z(ts),
                    "utm_source": utm[0],
                    "utm_medium": utm[1],
                    "utm_campaign": b.utm_campaign or utm[2],
                    "message": (
                        f"Interested in a demo for our {b.company_size} person team."
                        if form == "demo_request"
                        else "Could you send pricing details?"
                    ),
                    "consent_marketing": rng.random() < 0.7,
                    "country": b.country,
                },
            )
        )

    # The lead-linked rows are few; the anonymous ones are streamed day by day
    # and merged with them, so memory stays flat at any scale.
    pending = sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)
    out = writers.open("submissions", time_column="created")
    rest = total - len(rows)
    first = day_start(world.as_of, WINDOW_DAYS)
    for d, n in enumerate(daily_counts(rest, first, WINDOW_DAYS, rng, growth=0.5)):
        rows = []
        while pending and pending[-1][0] < first + (d + 1) * DAY:
            rows.append(pending.pop())
        for _ in range(n):
            ts = first + d * DAY + rng.randrange(DAY)
            form = rng.choices(("newsletter", "contact", "demo_request"), weights=(7, 2, 1))[0]
            fn, ln = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = f"{fn}.{ln}".lower().replace("'", "").replace("ü", "u")
            company = None
            if form != "newsletter":
                company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIX)}"
            domain = (
                company.split()[0].lower() + ".example.com"
                if company and rng.random() < 0.6
                else rng.choice(FREE_MAIL)
            )
            source, medium, campaign = rng.choice(
                (
                    ("google", "organic", None),
                    ("google", "cpc", "brand-search"),
                    ("newsletter", "email", "weekly-digest"),
                    (None, None, None),
                    ("linkedin", "social", "thought-leadership"),
                )
            )
            sid = _uuid(rng)
            rows.append(
                (
                    ts,
                    sid,
                    {
                        "id": sid,
                        "form_type": form,
                        "email": f"{local}{rng.randrange(100)}@{domain}",
                        "name": f"{fn} {ln}",
                        "company": company,
                        "page_url": site
                        + (
                            f"/blog/post-{rng.randrange(1, 60)}"
                            if form == "newsletter"
                            else FORM_PAGES[form]
                        ),
                        "submitted_at": iso_z(ts),
                        "utm_source": source,
                        "utm_medium": medium,
                        "utm_campaign": campaign,
                        "message": None if form == "newsletter" else "Please get in touch.",
                        "consent_marketing": form == "newsletter" or rng.random() < 0.5,
                        "country": rng.choice(("US", "GB", "DE", "FR", "IN", "CA")),
                    },
                )
            )
        for ts, sid, payload in sorted(rows, key=lambda r: (r[0], r[1])):
            out.add(sid, ts, payload)
    for ts, sid, payload in reversed(pending):
        out.add(sid, ts, payload)
    writers.done("submissions", out)
