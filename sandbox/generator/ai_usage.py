"""Model usage records from the AI service: tokens in and out, model, feature and cost.

Cost is exact: tokens times the model's price per million tokens, rounded to
the micro-dollar and given as a decimal string, as billing APIs do.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from sandbox.generator.core import (
    DAY,
    Defect,
    Writers,
    daily_counts,
    day_start,
    iso_z,
    stream,
    token,
)
from sandbox.generator.world import World

WINDOW_DAYS = 180
DEFECTS: dict[str, tuple[Defect, ...]] = {
    "usage": (
        Defect("missing_field", "model", 101, 7),
        Defect("unknown_field", "reasoning_tokens", 89, 13),
    ),
}
PRICES_PER_MTOK: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "claude-3-5-haiku": (Decimal("0.80"), Decimal("4.00")),
    "claude-sonnet-4": (Decimal("3.00"), Decimal("15.00")),
    "text-embedding-3-small": (Decimal("0.02"), Decimal("0")),
}
# feature: (weight, models and their weights, median input tokens, median output tokens)
FEATURES = {
    "lead_scoring_explanations": (3, (("gpt-4o-mini", 8), ("claude-3-5-haiku", 2)), 900, 180),
    "email_drafting": (3, (("gpt-4o", 5), ("claude-sonnet-4", 5)), 1500, 450),
    "supplier_doc_extraction": (2, (("claude-sonnet-4", 7), ("gpt-4o", 3)), 6000, 700),
    "chat_assistant": (4, (("gpt-4o-mini", 6), ("claude-sonnet-4", 4)), 2500, 350),
    "semantic_search": (3, (("text-embedding-3-small", 1),), 300, 0),
}
MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "ai_usage")
    first = day_start(world.as_of, WINDOW_DAYS)
    names = list(FEATURES)
    weights = [FEATURES[f][0] for f in names]
    out = writers.open("usage", time_column="created")
    for d, n in enumerate(
        daily_counts(world.counts["ai_usage.usage"], first, WINDOW_DAYS, rng, growth=2.0)
    ):
        rows = []
        for _ in range(n):
            ts = first + d * DAY + rng.randrange(DAY)
            feature = rng.choices(names, weights=weights)[0]
            _, models, med_in, med_out = FEATURES[feature]
            model = rng.choices([m for m, _ in models], weights=[w for _, w in models])[0]
            tokens_in = max(1, int(rng.lognormvariate(math.log(med_in), 0.6)))
            tokens_out = int(rng.lognormvariate(math.log(med_out), 0.5)) if med_out else 0
            p_in, p_out = PRICES_PER_MTOK[model]
            cost = ((tokens_in * p_in + tokens_out * p_out) / MILLION).quantize(
                MICRO, rounding=ROUND_HALF_UP
            )
            uid = "usage_" + token(rng, 24)
            rows.append(
                (
                    ts,
                    uid,
                    {
                        "id": uid,
                        "timestamp": iso_z(ts),
                        "model": model,
                        "input_tokens": tokens_in,
                        "output_tokens": tokens_out,
                        "cost_usd": str(cost),
                        "feature": feature,
                        "request_id": "req_" + token(rng, 20),
                        "latency_ms": int(rng.lognormvariate(math.log(400 + tokens_out * 8), 0.3)),
                        "status": "succeeded",
                    },
                )
            )
        rows.sort(key=lambda r: (r[0], r[1]))
        for ts, uid, payload in rows:
            out.add(uid, ts, payload)
    writers.done("usage", out)
