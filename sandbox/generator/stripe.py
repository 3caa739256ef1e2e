"""Stripe objects as the API returns them (test mode): customers, subscriptions, invoices,
charges and balance transactions, linked as Stripe links them.

Converted CRM leads become customers (same email, ``metadata.crm_lead_id``).
Subscriptions bill every period; each paid invoice has its charge; other charges
are one-off. Every succeeded charge has a balance transaction and every refund
another. Charges are streamed day by day, so a million of them need little memory.
"""

from __future__ import annotations

import bisect
import calendar
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sandbox.crm_export import FIRST_NAMES, FREE_MAIL, LAST_NAMES
from sandbox.generator.core import (
    DAY,
    Defect,
    Writers,
    daily_counts,
    day_start,
    stream,
    token,
)
from sandbox.generator.world import World

HISTORY_DAYS = (400, 800, 1150)
"""How far back an account's Stripe history goes: some tenants are a year old,
others have used Stripe since 2023 (1,150 days before the default ``as_of``), so
a first load must bring years of charges, not only this year's."""


def history_days(seed: int, tenant_id: str) -> int:
    """The tenant's Stripe history in days before ``as_of``: its own seeded stream,
    so the choice never shifts another table's data."""
    return stream(seed, tenant_id, "stripe.history").choice(HISTORY_DAYS)


DEFECTS: dict[str, tuple[Defect, ...]] = {
    "customers": (Defect("missing_field", "created", 41, 6),),
    "charges": (
        Defect("missing_field", "amount", 211, 17),
        Defect("unknown_field", "payment_method_options_v2", 307, 40),
    ),
    "invoices": (Defect("missing_field", "customer", 59, 8),),
    "subscriptions": (Defect("missing_field", "customer", 43, 5),),
    "balance_transactions": (Defect("missing_field", "amount", 223, 19),),
}
PLANS = (("Starter", 0.45), ("Pro", 0.4), ("Business", 0.15))
PLAN_PRICES = {
    "usd": {"Starter": 2900, "Pro": 9900, "Business": 29900},
    "eur": {"Starter": 2500, "Pro": 8900, "Business": 27900},
    "gbp": {"Starter": 2200, "Pro": 7900, "Business": 24900},
}
FEES = {"usd": (0.029, 30), "eur": (0.015, 25), "gbp": (0.015, 20)}
CARDS = (("visa", 55), ("mastercard", 30), ("amex", 10), ("discover", 5))
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "CA", "AU", "NL", "IE")
SYMBOL = {"usd": "$", "eur": "€", "gbp": "£"}


def _add_months(ts: int, months: int) -> int:
    dt = datetime.fromtimestamp(ts, UTC)
    m = dt.month - 1 + months
    year, month = dt.year + m // 12, m % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def _fee(currency: str, amount: int) -> int:
    pct, fixed = FEES[currency]
    return int(round(amount * pct)) + fixed


class Ids:
    """Stripe-looking ids from one seeded stream."""

    def __init__(self, rng) -> None:
        self.rng = rng

    def __call__(self, prefix: str, n: int = 24) -> str:
        return prefix + token(self.rng, n)


def _price(prices: dict[str, dict[str, Any]], plan: str, interval: str) -> dict[str, Any]:
    return prices[f"{plan}:{interval}"]


def generate(world: World, writers: Writers) -> None:
    rng = stream(world.seed, world.tenant_id, "stripe")
    ids = Ids(stream(world.seed, world.tenant_id, "stripe.ids"))
    cur = world.profile.currency
    now = world.as_of_ts
    window_days = history_days(world.seed, world.tenant_id)
    first_day = day_start(world.as_of, window_days)
    descriptor = world.profile.name.upper()[:22]
    counts = world.counts

    # Products and prices: the tenant's plans, monthly and yearly.
    prices: dict[str, dict[str, Any]] = {}
    catalog_created = first_day - 200 * DAY
    for plan, _ in PLANS:
        product = ids("prod_", 14)
        for interval in ("month", "year"):
            amount = PLAN_PRICES[cur][plan] * (10 if interval == "year" else 1)
            prices[f"{plan}:{interval}"] = {
                "id": ids("price_1", 23),
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": catalog_created,
                "currency": cur,
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": f"{plan.lower()}_{interval}ly",
                "metadata": {},
                "nickname": f"{plan} ({interval}ly)",
                "product": product,
                "recurring": {
                    "aggregate_usage": None,
                    "interval": interval,
                    "interval_count": 1,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": amount,
                "unit_amount_decimal": str(amount),
            }

    # Customers: converted leads first (created when they converted), then self-serve sign-ups.
    n_customers = counts["stripe.customers"]
    customers: list[dict[str, Any]] = []
    for lead in world.converted()[:n_customers]:
        b = lead.base
        customers.append(
            {
                "created": lead.converted_at,
                "email": b.email,
                "name": f"{b.first_name} {b.last_name}",
                "country": b.country,
                "lead_id": b.lead_id,
            }
        )
    while len(customers) < n_customers:
        fn, ln = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{fn}.{ln}".lower().replace("'", "").replace("ü", "u")
        customers.append(
            {
                "created": first_day + rng.randrange(window_days * DAY - 3600),
                "email": f"{local}{rng.randrange(1000)}@{rng.choice(FREE_MAIL)}",
                "name": f"{fn} {ln}",
                "country": rng.choice(COUNTRIES),
                "lead_id": None,
            }
        )
    for c in customers:
        c["id"] = ids("cus_", 14)
        c["prefix"] = token(rng, 8, "ABCDEF0123456789")
        c["postal"] = f"{rng.randrange(10000, 99999)}"
    customers.sort(key=lambda c: (c["created"], c["id"]))
    customer_created = [c["created"] for c in customers]

    out = writers.open("customers", time_column="created")
    for c in customers:
        out.add(
            c["id"],
            c["created"],
            {
                "id": c["id"],
                "object": "customer",
                "address": {
                    "city": None,
                    "country": c["country"],
                    "line1": None,
                    "line2": None,
                    "postal_code": c["postal"],
                    "state": None,
                },
                "balance": 0,
                "created": c["created"],
                "currency": cur,
                "default_source": None,
                "delinquent": False,
                "description": None,
                "discount": None,
                "email": c["email"],
                "invoice_prefix": c["prefix"],
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": {"crm_lead_id": c["lead_id"]} if c["lead_id"] else {},
                "name": c["name"],
                "next_invoice_sequence": 1,
                "phone": None,
                "preferred_locales": ["en"],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            },
        )
    writers.done("customers", out)

    # Subscriptions and the invoices of each billing period.
    n_subs = counts["stripe.subscriptions"]
    picks = (
        rng.sample(range(len(customers)), n_subs)
        if n_subs <= len(customers)
        else [rng.randrange(len(customers)) for _ in range(n_subs)]
    )
    subs: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []
    for ci in picks:
        c = customers[ci]
        created = min(c["created"] + rng.randrange(0, 10 * DAY), now - 3600)
        created = max(created, c["created"])
        plan = rng.choices([p for p, _ in PLANS], weights=[w for _, w in PLANS])[0]
        interval = "year" if rng.random() < 0.2 else "month"
        price = _price(prices, plan, interval)
        step = 12 if interval == "year" else 1
        fate = rng.random()
        trialing = now - created < 14 * DAY and fate < 0.5
        sub = {
            "id": ids("sub_1", 23),
            "item": ids("si_", 14),
            "pm": ids("pm_1", 23),
            "customer": c,
            "created": created,
            "price": price,
            "interval": interval,
            "plan": plan,
        }
        # Billing periods up to as_of; about a quarter cancel, a few fall past due.
        periods = []
        start = created
        cancel_after = rng.randint(1, 14) if fate > 0.75 else None
        while start <= now and not trialing:
            periods.append(start)
            if cancel_after is not None and len(periods) >= cancel_after:
                break
            start = _add_months(start, step)
        past_due = not trialing and cancel_after is None and 0.7 < fate <= 0.75
        if trialing:
            status, period_start = "trialing", created
            period_end = created + 14 * DAY
        else:
            period_start = periods[-1]
            period_end = _add_months(period_start, step)
            if cancel_after is not None and period_end <= now:
                status = "canceled"
            elif past_due:
                status = "past_due"
            else:
                status = "active"
        sub.update(
            status=status,
            period_start=period_start,
            period_end=period_end,
            ended_at=period_end if status == "canceled" else None,
            canceled_at=(
                min(period_end - rng.randrange(DAY, 20 * DAY), now) if cancel_after else None
            ),
            latest_invoice=None,
        )
        for k, p_start in enumerate(periods, start=1):
            last = k == len(periods)
            inv = {
                "id": ids("in_1", 23),
                "line": ids("il_1", 23),
                "sub": sub,
                "number": f"{c['prefix']}-{k:04d}",
                "created": p_start,
                "period_end": _add_months(p_start, step),
                "amount": price["unit_amount"],
                "billing_reason": "subscription_create" if k == 1 else "subscription_cycle",
                "open": past_due and last,
                "charge": None,
                "payment_intent": None,
            }
            invoices.append(inv)
            sub["latest_invoice"] = inv["id"]
        subs.append(sub)

    # Paid invoices are charged an hour after they open; when asked for fewer
    # charges than invoices, the latest invoices were paid out of band.
    paid = sorted((i for i in invoices if not i["open"]), key=lambda i: (i["created"], i["id"]))
    n_charges = counts["stripe.charges"]
    invoice_charges: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for inv in paid[:n_charges]:
        inv["charge"] = ids("ch_3", 23)
        inv["payment_intent"] = ids("pi_3", 23)
        ts = min(inv["created"] + 3600, now - 1)
        inv["paid_at"] = ts
        c = inv["sub"]["customer"]
        invoice_charges[(ts - first_day) // DAY].append(
            {
                "id": inv["charge"],
                "created": ts,
                "amount": inv["amount"],
                "customer": c,
                "invoice": inv["id"],
                "payment_intent": inv["payment_intent"],
                "description": "Subscription update"
                if inv["billing_reason"] == "subscription_cycle"
                else "Subscription creation",
                "status": "succeeded",
                "pm": inv["sub"]["pm"],
            }
        )
    for inv in paid[n_charges:]:
        inv["paid_at"] = min(inv["created"] + 3600, now - 1)

    out = writers.open("subscriptions", time_column="created")
    for sub in sorted(subs, key=lambda s: (s["created"], s["id"])):
        out.add(sub["id"], sub["created"], _subscription(sub, cur))
    writers.done("subscriptions", out)

    out = writers.open("invoices", time_column="created")
    for inv in sorted(invoices, key=lambda i: (i["created"], i["id"])):
        out.add(inv["id"], inv["created"], _invoice(inv, cur, world.profile.name, now))
    writers.done("invoices", out)

    # Charges and balance transactions, streamed one day at a time.
    one_off = n_charges - min(len(paid), n_charges)
    days = -(-(now - first_day) // DAY)  # the last day may be partial when as_of is not midnight
    per_day = daily_counts(one_off, first_day, days, rng)
    refunds: dict[int, list[dict[str, Any]]] = defaultdict(list)
    charge_w = writers.open("charges", time_column="created")
    txn_w = writers.open("balance_transactions", time_column="created")
    brands = [b for b, _ in CARDS]
    brand_cum = list(_cumulative([w for _, w in CARDS]))
    mu, sigma = math.log(4500), 0.9
    for d in range(days):
        day = first_day + d * DAY
        todays = list(invoice_charges.pop(d, ()))
        for _ in range(per_day[d]):
            ts = day + rng.randrange(min(DAY, now - day))
            hi = bisect.bisect_right(customer_created, ts)
            customer = customers[rng.randrange(hi)] if hi and rng.random() < 0.85 else None
            amount = max(50, int(round(rng.lognormvariate(mu, sigma) / 100)) * 100 - 1)
            roll = rng.random()
            todays.append(
                {
                    "id": ids("ch_3", 23),
                    "created": ts,
                    "amount": amount,
                    "customer": customer,
                    "invoice": None,
                    "payment_intent": ids("pi_3", 23),
                    "description": rng.choice(
                        (
                            "Onboarding package",
                            "Add-on seats",
                            "Usage overage",
                            "Consulting hours",
                            None,
                        )
                    ),
                    "status": "failed" if roll < 0.06 else "succeeded",
                    "decline": "insufficient_funds" if roll < 0.015 else "generic_decline",
                    "pm": ids("pm_1", 23),
                }
            )
        todays.sort(key=lambda ch: (ch["created"], ch["id"]))
        txns = refunds.pop(d, [])
        for ch in todays:
            card_rng = rng.random()
            brand = brands[bisect.bisect_right(brand_cum, card_rng * brand_cum[-1])]
            refunded = 0
            if ch["status"] == "succeeded":
                ch["txn"] = ids("txn_3", 23)
                fee = _fee(cur, ch["amount"])
                available = day_start(datetime.fromtimestamp(ch["created"] + 2 * DAY, UTC), 0)
                txns.append(
                    {
                        "id": ch["txn"],
                        "created": ch["created"],
                        "amount": ch["amount"],
                        "fee": fee,
                        "available_on": available,
                        "source": ch["id"],
                        "type": "charge",
                        "description": ch["description"],
                    }
                )
                if rng.random() < 0.04:
                    when = ch["created"] + rng.randrange(DAY, 20 * DAY)
                    if when < now:
                        refunded = ch["amount"] if rng.random() < 0.7 else ch["amount"] // 2
                        refunds[(when - first_day) // DAY].append(_refund(ids, ch, when, refunded))
            else:
                ch["txn"] = None
            charge_w.add(
                ch["id"], ch["created"], _charge(ch, cur, brand, refunded, descriptor, rng)
            )
        txns.sort(key=lambda t: (t["created"], t["id"]))
        for t in txns:
            txn_w.add(t["id"], t["created"], _balance_transaction(t, cur, now))
    for d in sorted(refunds):  # refunds scheduled beyond the window (none before as_of)
        for t in sorted(refunds[d], key=lambda t: (t["created"], t["id"])):
            txn_w.add(t["id"], t["created"], _balance_transaction(t, cur, now))
    writers.done("charges", charge_w)
    writers.done("balance_transactions", txn_w)


def _refund(ids: Ids, ch: dict[str, Any], when: int, amount: int) -> dict[str, Any]:
    """The balance transaction of a refund (Stripe's refund object itself is not listed)."""
    return {
        "id": ids("txn_3", 23),
        "created": when,
        "amount": -amount,
        "fee": 0,
        "available_on": when,
        "source": ids("re_3", 23),
        "type": "refund",
        "description": f"REFUND FOR CHARGE ({ch['description'] or 'charge'})",
    }


def _cumulative(weights: list[float]):
    acc = 0.0
    for w in weights:
        acc += w
        yield acc


def _charge(
    ch: dict[str, Any], cur: str, brand: str, refunded: int, descriptor: str, rng
) -> dict[str, Any]:
    c = ch["customer"]
    ok = ch["status"] == "succeeded"
    country = c["country"] if c else "US"
    decline = ch.get("decline", "generic_decline")
    return {
        "id": ch["id"],
        "object": "charge",
        "amount": ch["amount"],
        "amount_captured": ch["amount"] if ok else 0,
        "amount_refunded": refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": ch["txn"],
        "billing_details": {
            "address": {
                "city": None,
                "country": country,
                "line1": None,
                "line2": None,
                "postal_code": c["postal"] if c else None,
                "state": None,
            },
            "email": c["email"] if c else None,
            "name": c["name"] if c else None,
            "phone": None,
        },
        "calculated_statement_descriptor": descriptor,
        "captured": ok,
        "created": ch["created"],
        "currency": cur,
        "customer": c["id"] if c else None,
        "description": ch["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if ok else "card_declined",
        "failure_message": None
        if ok
        else (
            "Your card has insufficient funds."
            if decline == "insufficient_funds"
            else "Your card was declined."
        ),
        "fraud_details": {},
        "invoice": ch["invoice"],
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "network_status": "approved_by_network" if ok else "declined_by_network",
            "reason": None if ok else decline,
            "risk_level": "normal",
            "risk_score": rng.randrange(0, 65),
            "seller_message": "Payment complete."
            if ok
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if ok else "issuer_declined",
        },
        "paid": ok,
        "payment_intent": ch["payment_intent"],
        "payment_method": ch["pm"],
        "payment_method_details": {
            "card": {
                "amount_authorized": ch["amount"] if ok else None,
                "brand": brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": "pass",
                    "cvc_check": "pass",
                },
                "country": country,
                "exp_month": rng.randint(1, 12),
                "exp_year": rng.randint(2027, 2031),
                "funding": "credit" if rng.random() < 0.7 else "debit",
                "last4": f"{rng.randrange(10_000):04d}",
                "network": brand,
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "radar_options": {},
        "receipt_email": c["email"] if c else None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{ch['id'][3:]}",
        "refunded": ok and refunded == ch["amount"],
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": ch["status"],
        "transfer_data": None,
        "transfer_group": None,
    }


def _balance_transaction(t: dict[str, Any], cur: str, now: int) -> dict[str, Any]:
    fee = t["fee"]
    return {
        "id": t["id"],
        "object": "balance_transaction",
        "amount": t["amount"],
        "available_on": t["available_on"],
        "created": t["created"],
        "currency": cur,
        "description": t["description"],
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {
                "amount": fee,
                "application": None,
                "currency": cur,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else [],
        "net": t["amount"] - fee,
        "reporting_category": t["type"],
        "source": t["source"],
        "status": "available" if t["available_on"] <= now else "pending",
        "type": t["type"],
    }


def _subscription(sub: dict[str, Any], cur: str) -> dict[str, Any]:
    price = sub["price"]
    return {
        "id": sub["id"],
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": sub["created"],
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": sub["canceled_at"],
        "collection_method": "charge_automatically",
        "created": sub["created"],
        "currency": cur,
        "current_period_end": sub["period_end"],
        "current_period_start": sub["period_start"],
        "customer": sub["customer"]["id"],
        "days_until_due": None,
        "default_payment_method": sub["pm"],
        "description": None,
        "discount": None,
        "ended_at": sub["ended_at"],
        "items": {
            "object": "list",
            "data": [
                {
                    "id": sub["item"],
                    "object": "subscription_item",
                    "created": sub["created"],
                    "metadata": {},
                    "price": price,
                    "quantity": 1,
                    "subscription": sub["id"],
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub['id']}",
        },
        "latest_invoice": sub["latest_invoice"],
        "livemode": False,
        "metadata": {},
        "pending_setup_intent": None,
        "pending_update": None,
        "quantity": 1,
        "schedule": None,
        "start_date": sub["created"],
        "status": sub["status"],
        "test_clock": None,
        "trial_end": sub["period_end"] if sub["status"] == "trialing" else None,
        "trial_start": sub["created"] if sub["status"] == "trialing" else None,
    }


def _invoice(inv: dict[str, Any], cur: str, account_name: str, now: int) -> dict[str, Any]:
    sub, amount = inv["sub"], inv["amount"]
    c, price = sub["customer"], sub["price"]
    is_open = inv["open"]
    paid_at = None if is_open else inv.get("paid_at")
    money = f"{SYMBOL[cur]}{amount / 100:,.2f}"
    return {
        "id": inv["id"],
        "object": "invoice",
        "account_country": "US" if cur == "usd" else ("GB" if cur == "gbp" else "DE"),
        "account_name": account_name,
        "amount_due": amount,
        "amount_paid": 0 if is_open else amount,
        "amount_remaining": amount if is_open else 0,
        "attempt_count": 2 if is_open else 1,
        "attempted": True,
        "auto_advance": is_open,
        "billing_reason": inv["billing_reason"],
        "charge": inv["charge"],
        "collection_method": "charge_automatically",
        "created": inv["created"],
        "currency": cur,
        "customer": c["id"],
        "customer_email": c["email"],
        "customer_name": c["name"],
        "description": None,
        "due_date": None,
        "ending_balance": 0,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_sandbox/test_{inv['id'][3:]}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/acct_sandbox/test_{inv['id'][3:]}/pdf",
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": inv["line"],
                    "object": "line_item",
                    "amount": amount,
                    "amount_excluding_tax": amount,
                    "currency": cur,
                    "description": f"1 × {sub['plan']} (at {money} / {sub['interval']})",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": inv["id"],
                    "livemode": False,
                    "metadata": {},
                    "period": {"end": inv["period_end"], "start": inv["created"]},
                    "price": price,
                    "proration": False,
                    "quantity": 1,
                    "subscription": sub["id"],
                    "subscription_item": sub["item"],
                    "tax_amounts": [],
                    "tax_rates": [],
                    "type": "subscription",
                    "unit_amount_excluding_tax": str(amount),
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{inv['id']}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": min(inv["created"] + 3 * DAY, now + DAY) if is_open else None,
        "number": inv["number"],
        "paid": not is_open,
        "paid_out_of_band": not is_open and inv["charge"] is None,
        "payment_intent": inv["payment_intent"],
        "period_end": inv["created"],
        "period_start": inv["created"],
        "status": "open" if is_open else "paid",
        "status_transitions": {
            "finalized_at": inv["created"],
            "marked_uncollectible_at": None,
            "paid_at": paid_at,
            "voided_at": None,
        },
        "subscription": sub["id"],
        "subtotal": amount,
        "tax": None,
        "total": amount,
    }
