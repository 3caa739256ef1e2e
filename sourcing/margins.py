"""Unit economics at a what-if price, from the fee structure kept per item.

Amazon's fee estimate splits into a referral fee, a share of the price, and
fixed fees (FBA fulfilment, variable closing, per item) that do not move with
it. With both kept (stg_sp_api__fee_estimates), the fees and margin at any other
price follow without another Product Fees call. dbt's
``sourcing_fees_at_price``/``sourcing_margin_at_price`` macros are the same
rule in SQL; tests/test_sourcing_marts.py holds the two to the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Margin:
    """One unit sold at ``price``: what goes to fees, what is left after the landed cost."""

    price: Decimal
    fees: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    roi_pct: Decimal | None


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def fees_at_price(price: Decimal, *, referral_rate: Decimal, fixed_fees: Decimal) -> Decimal:
    """Fees for one unit at ``price``: ``referral_rate * price + fixed_fees``."""
    if price < 0:
        raise ValueError(f"price must not be negative, got {price}")
    return _money(referral_rate * price + fixed_fees)


def margin_at_price(
    price: Decimal, *, referral_rate: Decimal, fixed_fees: Decimal, landed_cost: Decimal
) -> Margin:
    """The margin of one unit at ``price`` (a what-if or the current one), its share of
    the price and its return on the landed cost, in percent to two places."""
    fees = fees_at_price(price, referral_rate=referral_rate, fixed_fees=fixed_fees)
    margin = _money(price - (referral_rate * price + fixed_fees) - landed_cost)
    pct = _money(100 * margin / price) if price > 0 else None
    roi = _money(100 * margin / landed_cost) if landed_cost > 0 else None
    return Margin(price=price, fees=fees, margin=margin, margin_pct=pct, roi_pct=roi)
