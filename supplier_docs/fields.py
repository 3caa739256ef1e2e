"""Fields found in a document's lines by their labels, and the one validation every
extractor's output goes through.

Supplier paperwork is forms: a label, a colon, a value (``Policy Number:
GL-2024-88123``), sometimes the value on the next line. Labels are matched at the
start of a line on folded text with optional spaces between words, so OCR's
dropped spaces and I/l/1 swaps do not hide them. Each candidate keeps the line
it came from and its span; the best candidate of each field wins (label
strength times OCR confidence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from core.contracts.supplier_docs import FIELDS
from supplier_docs.reading import Line, Page, ReadDocument
from supplier_docs.values import (
    currency_code,
    find_date,
    find_money,
    fold,
    normalise_amount,
    normalise_date,
)


@dataclass(frozen=True)
class FieldValue:
    """One extracted field, in the lake's form, with its evidence."""

    field: str
    value: str
    confidence: float
    page: int
    location: str
    method: str


LABELS: dict[str, tuple[tuple[str, float], ...]] = {
    "legal_name": (
        ("Named Insured", 0.95),
        ("Insured", 0.9),
        ("Legal Name", 0.95),
        ("Registered Name", 0.95),
        ("Licensee", 0.9),
        ("Organization", 0.85),
        ("Organisation", 0.85),
        ("Account Holder", 0.9),
        ("Account Name", 0.85),
        ("Business Name", 0.9),
        ("Company", 0.8),
        ("Supplier", 0.75),
        ("Name", 0.8),
        ("To", 0.5),
    ),
    "issuer": (
        ("Insurer A", 0.9),
        ("Insurer", 0.9),
        ("Issuing Authority", 0.9),
        ("Certification Body", 0.9),
        ("Certified by", 0.85),
        ("Issued by", 0.85),
        ("Registrar", 0.8),
        ("Issuer", 0.85),
        ("From", 0.5),
    ),
    "document_number": (
        ("Policy Number", 0.95),
        ("Policy No", 0.95),
        ("Certificate Number", 0.95),
        ("Certificate No", 0.95),
        ("Licence Number", 0.95),
        ("License Number", 0.95),
        ("Licence No", 0.9),
        ("License No", 0.9),
        ("Registration Number", 0.9),
        ("Employer identification number", 0.95),
        ("EIN", 0.9),
        ("Taxpayer Identification Number", 0.9),
        ("Account Number", 0.9),
        ("Reference", 0.6),
    ),
    "issue_date": (
        ("Date Issued", 0.95),
        ("Date of Issue", 0.95),
        ("Issue Date", 0.95),
        ("Issued On", 0.9),
        ("Policy Effective Date", 0.9),
        ("Effective Date", 0.9),
        ("Date", 0.7),
    ),
    "expiry_date": (
        ("Policy Expiration Date", 0.95),
        ("Expiration Date", 0.95),
        ("Expiry Date", 0.95),
        ("Valid Until", 0.95),
        ("Valid Through", 0.95),
        ("Valid To", 0.9),
        ("Expires On", 0.9),
        ("Expires", 0.9),
    ),
    "coverage_amount": (
        ("General Aggregate Limit", 0.95),
        ("General Aggregate", 0.9),
        ("Aggregate Limit", 0.95),
        ("Limit of Liability", 0.95),
        ("Each Occurrence", 0.85),
        ("Sum Insured", 0.9),
        ("Coverage Amount", 0.9),
        ("Coverage", 0.8),
        ("Limit", 0.8),
    ),
}
assert set(LABELS) | {"currency"} == set(FIELDS)


def _label_pattern(label: str) -> re.Pattern[str]:
    """The folded label at the start of a line, words with optional spaces between,
    an optional note in brackets, then the separator."""
    words = r"\s*".join(re.escape(fold(word)) for word in label.split())
    return re.compile(rf"^\W{{0,3}}{words}(?:\s*\([^)]*\))?(?:\s*[:#.]{{1,2}}|\s+|$)\s*")


_PATTERNS = {
    name: [(_label_pattern(label), strength) for label, strength in labels]
    for name, labels in LABELS.items()
}
_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.]{2,63}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[.,])(?=[A-Za-z])")
"""Where OCR dropped a space in a title-case name: ``NorthwindTradersLtd``."""


def clean_text(raw: str) -> tuple[str, float]:
    """A name as written, spaces restored where OCR lost them; the factor by which
    the confidence drops when they had to be."""
    text = " ".join(raw.strip(" :;,-").split())
    if " " not in text and len(text) > 12 and _CAMEL.search(text):
        return _CAMEL.sub(" ", text), 0.8
    return text, 1.0


def validate(field: str, raw: str) -> str | None:
    """``raw`` in the lake's form for ``field``, or None when it cannot be one.

    The rules extractor's values pass through here, and so does whatever an LLM
    returns: a model's answer is data, never trusted as it comes.
    """
    raw = raw.strip()
    if not raw or len(raw) > 200:
        return None
    if field in ("issue_date", "expiry_date"):
        return normalise_date(raw)
    if field == "coverage_amount":
        return normalise_amount(raw)
    if field == "currency":
        return currency_code(raw)
    if field == "document_number":
        match = _NUMBER.fullmatch(raw.upper().replace(" ", ""))
        return match.group(0) if match and any(c.isdigit() for c in raw) else None
    if field in ("legal_name", "issuer"):
        text = " ".join(raw.split())
        return text if 2 <= len(text) <= 200 and any(c.isalpha() for c in text) else None
    raise ValueError(f"unknown field {field!r}")


def _candidates(document: ReadDocument) -> Iterable[FieldValue]:
    pairs = list(document.lines())
    for index, (page, line) in enumerate(pairs):
        folded = fold(line.text)
        for field, patterns in _PATTERNS.items():
            for pattern, strength in patterns:
                match = pattern.match(folded)
                if match is None:
                    continue
                start = match.end()
                target, offset = line, start
                if start >= len(line.text.rstrip()):
                    # The value sits on the next line of the same page.
                    following = pairs[index + 1] if index + 1 < len(pairs) else None
                    if following is None or following[0] is not page:
                        continue
                    target, offset, strength = following[1], 0, strength * 0.9
                yield from _values(field, page, target, offset, strength)
                break


def _values(
    field: str, page: Page, line: Line, offset: int, strength: float
) -> Iterable[FieldValue]:
    text = line.text
    rest = text[offset:]
    base = strength * line.confidence

    def found(name: str, value: str, start: int, end: int, confidence: float) -> FieldValue:
        return FieldValue(
            name,
            value,
            round(min(confidence, 1.0), 3),
            page.number,
            line.location(offset + start, offset + end),
            page.method,
        )

    if field in ("issue_date", "expiry_date"):
        date = find_date(rest)
        if date:
            yield found(field, date.value, date.start, date.end, base * date.confidence)
    elif field == "coverage_amount":
        money = find_money(rest)
        if money:
            a = money.amount
            yield found(field, a.value, a.start, a.end, base * a.confidence)
            if money.currency:
                c = money.currency
                yield found("currency", c.value, c.start, c.end, base * c.confidence)
    elif field == "document_number":
        match = _NUMBER.search(rest)
        if match and any(ch.isdigit() for ch in match.group(0)):
            value = validate(field, match.group(0).rstrip("."))
            if value:
                yield found(field, value, match.start(), match.end(), base)
    else:
        stripped = rest.strip()
        value, factor = clean_text(stripped)
        checked = validate(field, value)
        if checked:
            start = len(rest) - len(rest.lstrip())
            yield found(field, checked, start, start + len(stripped), base * factor)


def _letterhead_issuer(document: ReadDocument) -> FieldValue | None:
    """A bank letter names its bank in the letterhead, the first line, unlabelled."""
    for page, line in document.lines():
        if "bank" in fold(line.text) and len(line.text) <= 80:
            value, factor = clean_text(line.text)
            checked = validate("issuer", value)
            if checked:
                return FieldValue(
                    "issuer",
                    checked,
                    round(0.6 * factor * line.confidence, 3),
                    page.number,
                    line.location(0, len(line.text)),
                    page.method,
                )
        return None
    return None


def extract_fields(document: ReadDocument) -> list[FieldValue]:
    """The best value of each field found, in FIELDS order; absent fields are left out."""
    best: dict[str, FieldValue] = {}
    candidates = list(_candidates(document))
    letterhead = _letterhead_issuer(document)
    if letterhead:
        candidates.append(letterhead)
    for candidate in candidates:
        held = best.get(candidate.field)
        if held is None or candidate.confidence > held.confidence:
            best[candidate.field] = candidate
    issued, expires = best.get("issue_date"), best.get("expiry_date")
    if issued and expires and expires.value < issued.value:
        # One of the two was misread; say so rather than pick one.
        best["expiry_date"] = replace(expires, confidence=round(expires.confidence * 0.5, 3))
    return [best[name] for name in FIELDS if name in best]
