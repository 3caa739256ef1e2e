"""Field values as documents write them, turned into the lake's forms.

Dates become ISO 8601, amounts a decimal with a dot, currencies ISO 4217 codes.
Documents come from many countries and some are read by OCR, so the parsers
accept the common layouts (``03/31/2027``, ``31.03.2027``, ``31 March 2027``,
``USD 2,000,000.00``, ``EUR 1.000.000,00``, ``€500k`` is not one) and the letters
OCR confuses with digits inside a number (``2,0oo,000``). Each parser says how
sure it is: a date like ``04/05/2027`` could be April or May.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

_FOLD = str.maketrans({"l": "i", "1": "i", "|": "i", "!": "i", "0": "o"})


def fold(text: str) -> str:
    """Lower-case ``text`` with the letters OCR swaps made equal, keeping its length.

    Labels are matched on the folded line and values cut from the original at the
    same offsets, so ``Datelssued`` still finds "Date Issued".
    """
    return text.lower().translate(_FOLD)


MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

_MONTH = r"(?P<month_name>[A-Za-z]{3,9})\.?"
DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iso", re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})")),
    ("slash", re.compile(r"(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})")),
    ("dot", re.compile(r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})")),
    ("dash", re.compile(r"(?P<d>\d{1,2})-(?P<m>\d{1,2})-(?P<y>\d{4})")),
    # OCR may drop the spaces: "20May2026", "May20,2026".
    (
        "day_month",
        re.compile(rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[ -]?{_MONTH}[ ,-]*(?P<y>\d{{4}})"),
    ),
    ("month_day", re.compile(rf"{_MONTH} ?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,? ?(?P<y>\d{{4}})")),
)


@dataclass(frozen=True)
class Found:
    """A value parsed out of a line: its lake form, where it sat, how sure we are."""

    value: str
    start: int
    end: int
    confidence: float


def _date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def find_date(text: str) -> Found | None:
    """The first date in ``text``, as ISO 8601.

    ``a/b/yyyy`` is read month first (the US layout most certificates use) unless
    the first number cannot be a month; when both readings are valid dates the
    confidence drops, so a reviewer sees the doubt.
    """
    best: tuple[int, Found] | None = None
    for kind, pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            confidence = 1.0
            if kind == "slash":
                a, b, y = int(groups["a"]), int(groups["b"]), int(groups["y"])
                parsed = _date(y, a, b) if a <= 12 else _date(y, b, a)
                if a <= 12 and b <= 12 and a != b:
                    confidence = 0.8
            elif "month_name" in groups and groups["month_name"] is not None:
                month = MONTHS.get(groups["month_name"].lower())
                parsed = _date(int(groups["y"]), month, int(groups["d"])) if month else None
            else:
                parsed = _date(int(groups["y"]), int(groups["m"]), int(groups["d"]))
            if parsed is None or not 1900 <= parsed.year <= 2200:
                continue
            found = Found(parsed.isoformat(), match.start(), match.end(), confidence)
            if best is None or match.start() < best[0]:
                best = (match.start(), found)
            break
    return best[1] if best else None


CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "C$": "CAD"}
ISO_CURRENCIES = frozenset(
    "USD EUR GBP JPY CAD AUD NZD CHF CNY HKD SGD INR SEK NOK DKK PLN CZK HUF MXN BRL ZAR "
    "AED SAR TRY KRW TWD THB MYR IDR PHP VND ILS".split()
)
"""The codes accepted; a code outside this list is not taken for a currency."""

# Digits and the characters OCR reads in their place; separators between groups.
_DIGITISH = "0-9oOlI"
_AMOUNT = re.compile(
    rf"(?P<cur_before>[A-Za-z]{{3}}|US\$|C\$|[$€£¥])?\s*"
    rf"(?P<number>[0-9][{_DIGITISH}]{{0,2}}"
    rf"(?:[,. '\u00a0][{_DIGITISH}]{{3}})*(?:[.,][{_DIGITISH}]{{2}})?)"
    rf"(?!\d)\s*(?P<cur_after>[A-Za-z]{{3}}\b)?"
)
_OCR_DIGITS = str.maketrans({"o": "0", "O": "0", "l": "1", "I": "1"})


def currency_code(token: str | None) -> str | None:
    """An ISO 4217 code for a symbol or code as written (any case), else None."""
    if not token:
        return None
    if token in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[token]
    code = token.upper()
    return code if code in ISO_CURRENCIES else None


def parse_number(text: str) -> Decimal | None:
    """``2,000,000.00``, ``1.000.000,00``, ``500 000`` -> Decimal; None if not a number."""
    text = text.translate(_OCR_DIGITS).replace("\u00a0", " ").replace("'", " ")
    text = text.replace(" ", "")
    if re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d{1,2})?|\d+,\d{1,2}", text):
        text = text.replace(".", "").replace(",", ".")  # European: dots group, comma decimal
    else:
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@dataclass(frozen=True)
class Money:
    amount: Found
    currency: Found | None


def find_money(text: str) -> Money | None:
    """The largest amount in ``text`` that has a currency next to it.

    The currency is what makes a number an amount rather than a date or a policy
    number; with several (each occurrence, aggregate) the largest is the limit.
    """
    best: Money | None = None
    best_value = Decimal(-1)
    for match in _AMOUNT.finditer(text):
        before, after = match.group("cur_before"), match.group("cur_after")
        code = currency_code(before) or currency_code(after)
        if code is None:
            continue
        value = parse_number(match.group("number"))
        if value is None or value <= 0:
            continue
        group = "cur_before" if currency_code(before) else "cur_after"
        ocr_fixed = match.group("number") != match.group("number").translate(_OCR_DIGITS)
        confidence = 0.85 if ocr_fixed else 0.95
        money = Money(
            Found(f"{value.quantize(Decimal('0.01'))}", *match.span("number"), confidence),
            Found(code, *match.span(group), 0.95),
        )
        if value > best_value:
            best, best_value = money, value
    return best


def normalise_date(raw: str) -> str | None:
    """A date value handed in whole (by the LLM extractor) in ISO form, or None."""
    found = find_date(raw.strip())
    return found.value if found else None


def normalise_amount(raw: str) -> str | None:
    value = parse_number(re.sub(r"[^0-9oOlI,. '\u00a0]", "", raw).strip())
    return f"{value.quantize(Decimal('0.01'))}" if value is not None and value > 0 else None
