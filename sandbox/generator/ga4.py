"""GA4 traffic at its finest grain: one row per day, page, source / medium and client.

The sandbox aggregates these rows into any runReport the client asks for
(``totalUsers`` is the number of distinct clients). Known leads browse under
their CRM lead id as ``userId`` from the day the CRM knows them, and the leads
that will convert look at pricing and demo pages more.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

import pyarrow as pa

from sandbox.generator.core import DAY, Writers, daily_counts, day_start, stream
from sandbox.generator.world import Lead, World

WINDOW_DAYS = 180
NOT_SET = "(not set)"
PAGES = (
    ("/", 10.0),
    ("/features", 4.0),
    ("/pricing", 3.0),
    ("/blog/how-to-score-leads", 2.5),
    ("/blog/data-quality-checklist", 2.0),
    ("/blog/pricing-strategy", 1.5),
    ("/case-studies", 1.5),
    ("/docs/getting-started", 2.0),
    ("/about", 1.0),
    ("/careers", 0.7),
    ("/contact", 0.8),
    ("/demo", 0.8),
)
LEAD_PAGE_BOOST = {"/pricing": 3.0, "/demo": 3.0, "/case-studies": 2.0, "/contact": 1.5}
SOURCE_MEDIUMS = (
    ("google / organic", 9.0),
    ("(direct) / (none)", 6.0),
    ("google / cpc", 3.0),
    ("bing / organic", 1.0),
    ("linkedin.com / referral", 1.5),
    ("newsletter / email", 1.5),
    ("t.co / referral", 0.5),
    ("chatgpt.com / referral", 0.8),
)
LEAD_SOURCE_MEDIUM = {
    "referral": "partner-blog.example.com / referral",
    "partner": "partner.example.com / referral",
    "event": "(direct) / (none)",
    "website": "(direct) / (none)",
    "paid_search": "google / cpc",
    "organic_search": "google / organic",
    "social": "linkedin.com / referral",
    "cold_outbound": "outbound / email",
}
EXTRA_COLUMNS = {
    "date": pa.string(),
    "pagePath": pa.string(),
    "sessionSourceMedium": pa.string(),
    "clientId": pa.string(),
    "userId": pa.string(),
    "sessions": pa.int64(),
    "screenPageViews": pa.int64(),
    "conversions": pa.int64(),
}


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "ga4")
    total = world.counts["ga4.report_rows"]
    first = day_start(world.as_of, WINDOW_DAYS)
    pages = [p for p, _ in PAGES]
    page_w = [w for _, w in PAGES]
    lead_page_w = [w * LEAD_PAGE_BOOST.get(p, 1.0) for p, w in PAGES]
    mediums = [m for m, _ in SOURCE_MEDIUMS]
    medium_w = [w for _, w in SOURCE_MEDIUMS]
    pool = max(50, total // 4)
    anonymous = [
        f"{rng.randrange(100_000_000, 2_147_483_647)}.{first - rng.randrange(400 * DAY)}"
        for _ in range(pool)
    ]
    leads: list[Lead] = sorted(world.leads, key=lambda x: (x.created, x.id))
    out = writers.open("report_rows", time_column="created", extra=EXTRA_COLUMNS)
    totals = {"sessions": 0, "screenPageViews": 0, "conversions": 0}
    clients: set[str] = set()
    lead_cum: list[float] = []  # cumulative engagement: who visits how often
    acc = 0.0
    visible = 0  # leads whose first visit (two weeks before the CRM knew them) has passed
    for d, n in enumerate(daily_counts(total, first, WINDOW_DAYS, rng)):
        day = first + d * DAY
        date = datetime.fromtimestamp(day, UTC).strftime("%Y%m%d")
        while visible < len(leads) and leads[visible].created - 14 * DAY < day + DAY:
            acc += leads[visible].engagement
            lead_cum.append(acc)
            visible += 1
        seen: set[tuple[str, str, str]] = set()
        rows = []
        for _ in range(n):
            for _attempt in range(20):
                lead = None
                if visible and rng.random() < 0.2:
                    lead = leads[bisect.bisect_right(lead_cum, rng.random() * acc)]
                    client = lead.client_id
                    page = rng.choices(pages, weights=lead_page_w)[0]
                    medium = (
                        LEAD_SOURCE_MEDIUM[lead.base.source]
                        if rng.random() < 0.6
                        else rng.choices(mediums, weights=medium_w)[0]
                    )
                else:
                    client = anonymous[int(rng.paretovariate(1.2) * 7) % pool]
                    page = rng.choices(pages, weights=page_w)[0]
                    medium = rng.choices(mediums, weights=medium_w)[0]
                key = (page, medium, client)
                if key not in seen:
                    seen.add(key)
                    break
            else:
                continue  # a crowded day: this row would repeat one already drawn
            user = lead.id if lead is not None and lead.created < day + DAY else NOT_SET
            sessions = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
            views = sessions * rng.randint(1, 4)
            p_conv = 0.0
            if page in ("/demo", "/contact"):
                p_conv = 0.5 if lead is not None and lead.base.converts else 0.2
            conversions = 1 if rng.random() < p_conv else 0
            rows.append(
                (
                    f"{date}|{page}|{medium}|{client}",
                    page,
                    medium,
                    client,
                    user,
                    sessions,
                    views,
                    conversions,
                )
            )
        rows.sort()
        for rid, page, medium, client, user, sessions, views, conversions in rows:
            out.add(
                rid,
                day,
                {
                    "date": date,
                    "pagePath": page,
                    "sessionSourceMedium": medium,
                    "clientId": client,
                    "userId": user,
                    "sessions": sessions,
                    "totalUsers": 1,
                    "screenPageViews": views,
                    "conversions": conversions,
                },
                date=date,
                pagePath=page,
                sessionSourceMedium=medium,
                clientId=client,
                userId=user,
                sessions=sessions,
                screenPageViews=views,
                conversions=conversions,
            )
            totals["sessions"] += sessions
            totals["screenPageViews"] += views
            totals["conversions"] += conversions
            clients.add(client)
    writers.done("report_rows", out)
    writers.output.facts["ga4_totals"] = {**totals, "totalUsers": len(clients)}
