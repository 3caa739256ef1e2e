"""Product identifiers as a price list writes them, checked before they are matched.

A mistyped UPC or EAN would match the wrong product (or none) and price a sourcing
decision on it, so a code whose check digit is wrong is refused rather than
loaded: GS1's mod-10 rule for UPC-A (12 digits) and EAN-13 (13 digits), and the
shape of an ASIN (``B`` and nine capitals or digits, or an ISBN-10).
"""

from __future__ import annotations

import re

ASIN_RE = re.compile(r"^(B[0-9A-Z]{9}|[0-9]{9}[0-9X])$")


class IdentifierError(ValueError):
    """An identifier that is not one; the message says which and why."""


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of the digits before it: weights 3 and 1
    alternating from the rightmost digit of ``body``."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _gs1(value: str, *, name: str, length: int) -> str:
    code = value.strip()
    if not code.isascii() or not code.isdigit():
        raise IdentifierError(f"{name} {value!r} is not digits only")
    if len(code) != length:
        raise IdentifierError(f"{name} {value!r} has {len(code)} digits, not {length}")
    if gs1_check_digit(code[:-1]) != int(code[-1]):
        raise IdentifierError(
            f"{name} {code} fails its check digit (expected {gs1_check_digit(code[:-1])})"
        )
    return code


def check_upc(value: str) -> str:
    """A UPC-A code (12 digits, check digit right); IdentifierError otherwise."""
    return _gs1(value, name="upc", length=12)


def check_ean(value: str) -> str:
    """An EAN-13 code (13 digits, check digit right); IdentifierError otherwise."""
    return _gs1(value, name="ean", length=13)


def check_asin(value: str) -> str:
    """An ASIN, upper-cased; IdentifierError when it cannot be one."""
    code = value.strip().upper()
    if not ASIN_RE.match(code):
        raise IdentifierError(
            f"asin {value!r} is not an ASIN (B and 9 letters or digits, or an ISBN-10)"
        )
    return code
