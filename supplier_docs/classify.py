"""What kind of document this is, from the phrases each kind prints.

Phrases are compared on folded text with spaces removed (``values.fold``), since
OCR often drops the spaces of a heading (``CERTIFICATEOFLIABILITYINSURANCE``).
A title phrase weighs more than a phrase any kind might print; the confidence
grows with the score and with the lead over the next kind, so a document that
reads like two kinds is reported with the doubt.
"""

from __future__ import annotations

from core.contracts.supplier_docs import DOC_TYPES
from supplier_docs.values import fold

TITLE = 3.0
STRONG = 2.0
HINT = 1.0

PHRASES: dict[str, tuple[tuple[str, float], ...]] = {
    "certificate_of_insurance": (
        ("certificate of liability insurance", TITLE),
        ("certificate of insurance", TITLE),
        ("evidence of insurance", TITLE),
        ("insurer", STRONG),
        ("insured", HINT),
        ("policy number", STRONG),
        ("general aggregate", STRONG),
        ("each occurrence", STRONG),
        ("general liability", HINT),
        ("certificate holder", HINT),
    ),
    "quality_certificate": (
        ("quality management system", TITLE),
        ("iso 9001", TITLE),
        ("iso 14001", STRONG),
        ("iso 13485", STRONG),
        ("certificate of registration", STRONG),
        ("certification body", STRONG),
        ("accreditation", HINT),
        ("conform to the requirements", HINT),
    ),
    "business_licence": (
        ("business licence", TITLE),
        ("business license", TITLE),
        ("trade licence", TITLE),
        ("trade license", TITLE),
        ("licensee", STRONG),
        ("licence number", STRONG),
        ("license number", STRONG),
        ("issuing authority", HINT),
        ("place of business", HINT),
    ),
    "tax_form": (
        ("form w-9", TITLE),
        ("form w-8ben", TITLE),
        ("taxpayer identification number", TITLE),
        ("employer identification number", STRONG),
        ("internal revenue service", STRONG),
        ("federal tax classification", STRONG),
        ("vat registration", STRONG),
        ("penalties of perjury", HINT),
    ),
    "bank_letter": (
        ("bank reference letter", TITLE),
        ("bank confirmation letter", TITLE),
        ("account holder", STRONG),
        ("account number", STRONG),
        ("iban", STRONG),
        ("swift", HINT),
        ("sort code", HINT),
        ("good standing", HINT),
        ("to whom it may concern", HINT),
        ("bank", HINT),
    ),
}
assert set(PHRASES) | {"other"} == set(DOC_TYPES)

MIN_SCORE = 3.0
"""Below this no kind is claimed: the document is ``other``."""


def _compact(text: str) -> str:
    return "".join(fold(text).split())


def scores(text: str) -> dict[str, float]:
    compact = _compact(text)
    return {
        kind: sum(weight for phrase, weight in phrases if _compact(phrase) in compact)
        for kind, phrases in PHRASES.items()
    }


def classify(text: str) -> tuple[str, float]:
    """The document's kind and the confidence (0-1) in it."""
    ranked = sorted(scores(text).items(), key=lambda item: item[1], reverse=True)
    (kind, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_SCORE:
        # Nothing claims it; the more some kind scored, the less sure "other" is.
        return "other", round(1.0 - top / (2 * MIN_SCORE), 2)
    strength = min(1.0, top / 8.0)
    lead = (top - second) / top
    return kind, round(0.4 + 0.6 * strength * (0.5 + 0.5 * lead), 2)
