"""Realistic sample supplier documents, rendered to files.

The tests read these back and check the fields come out as written; the demo
generator drops them into tenants' inboxes. Each kind is laid out the way the
real paper is (an ACORD-style certificate of insurance, an ISO 9001
registration certificate, a city business licence, a W-9, a bank reference
letter), and each can be rendered as a text PDF (fpdf2), a scanned PDF (the page
drawn into an image with Pillow and embedded as the only content, so there is no
text layer and OCR must read it), a PNG image, plain text, a corrupt PDF (cut
short) or an encrypted PDF (pypdf, with a user password).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter


class Variant(StrEnum):
    """How a sample is rendered."""

    TEXT_PDF = "text_pdf"
    SCANNED_PDF = "scanned_pdf"
    PNG = "png"
    TEXT = "text"
    CORRUPT = "corrupt"
    ENCRYPTED = "encrypted"


SUFFIX = {
    Variant.TEXT_PDF: ".pdf",
    Variant.SCANNED_PDF: ".pdf",
    Variant.PNG: ".png",
    Variant.TEXT: ".txt",
    Variant.CORRUPT: ".pdf",
    Variant.ENCRYPTED: ".pdf",
}


class DateStyle(StrEnum):
    """How dates are written: documents come from many countries."""

    ISO = "iso"  # 2027-03-31
    US = "us"  # 03/31/2027
    EU = "eu"  # 31.03.2027
    LONG = "long"  # 31 March 2027
    MONTH_FIRST = "month_first"  # March 31, 2027


@dataclass(frozen=True)
class SampleDocument:
    """What a document says; rendered by ``render``."""

    kind: str
    legal_name: str
    issuer: str
    number: str
    issue_date: date
    expiry_date: date | None = None
    coverage_amount: Decimal | None = None
    currency: str | None = None
    date_style: DateStyle = DateStyle.US


def format_date(value: date, style: DateStyle) -> str:
    if style is DateStyle.ISO:
        return value.isoformat()
    if style is DateStyle.US:
        return value.strftime("%m/%d/%Y")
    if style is DateStyle.EU:
        return value.strftime("%d.%m.%Y")
    if style is DateStyle.LONG:
        return f"{value.day} {value:%B %Y}"
    return f"{value:%B} {value.day}, {value.year}"


def format_amount(amount: Decimal, currency: str) -> str:
    """``USD 2,000,000.00``; euro documents group with dots and use a comma."""
    text = f"{amount:,.2f}"
    if currency == "EUR":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{currency} {text}"


def lines_of(doc: SampleDocument) -> list[str]:
    """The document's text, line by line, as its kind lays it out."""
    d = doc.date_style
    issued = format_date(doc.issue_date, d)
    expires = format_date(doc.expiry_date, d) if doc.expiry_date else ""
    amount = (
        format_amount(doc.coverage_amount, doc.currency or "USD")
        if doc.coverage_amount is not None
        else ""
    )
    if doc.kind == "certificate_of_insurance":
        return [
            "CERTIFICATE OF LIABILITY INSURANCE",
            f"Date Issued: {issued}",
            "This certificate is issued as a matter of information only and",
            "confers no rights upon the certificate holder.",
            f"Insurer: {doc.issuer}",
            f"Insured: {doc.legal_name}",
            "Type of Insurance: Commercial General Liability",
            f"Policy Number: {doc.number}",
            f"Policy Effective Date: {issued}",
            f"Policy Expiration Date: {expires}",
            f"General Aggregate Limit: {amount}",
            "Authorized Representative",
        ]
    if doc.kind == "quality_certificate":
        return [
            "CERTIFICATE OF REGISTRATION",
            "This is to certify that the Quality Management System of",
            f"Organization: {doc.legal_name}",
            "has been assessed and found to conform to the requirements of",
            "ISO 9001:2015",
            f"Certificate No.: {doc.number}",
            f"Certification Body: {doc.issuer}",
            f"Date of Issue: {issued}",
            f"Valid Until: {expires}",
        ]
    if doc.kind == "business_licence":
        return [
            "BUSINESS LICENCE",
            f"Issuing Authority: {doc.issuer}",
            f"Licensee: {doc.legal_name}",
            f"Licence Number: {doc.number}",
            "Business Activity: Wholesale trade",
            f"Issue Date: {issued}",
            f"Expiry Date: {expires}",
            "This licence must be displayed at the place of business.",
        ]
    if doc.kind == "tax_form":
        return [
            "Form W-9",
            "Request for Taxpayer Identification Number and Certification",
            f"Issuer: {doc.issuer}",
            f"Name (as shown on your income tax return): {doc.legal_name}",
            "Federal tax classification: C Corporation",
            f"Employer identification number: {doc.number}",
            "Under penalties of perjury, I certify that the number shown",
            "on this form is my correct taxpayer identification number.",
            f"Date: {issued}",
        ]
    if doc.kind == "bank_letter":
        return [
            doc.issuer,
            "BANK REFERENCE LETTER",
            f"Date: {issued}",
            "To whom it may concern,",
            "We confirm that the following company holds an account with us",
            "in good standing.",
            f"Account Holder: {doc.legal_name}",
            f"Account Number: {doc.number}",
            "Yours faithfully, Relationship Manager",
        ]
    return [
        "NOTICE",
        f"From: {doc.issuer}",
        f"To: {doc.legal_name}",
        f"Reference: {doc.number}",
        f"Date: {issued}",
        "Please find our updated delivery schedule attached.",
    ]


def text_pdf(lines: list[str]) -> bytes:
    """A one-page A4 PDF with a real text layer (Helvetica, a PDF core font)."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.set_xy(20, 20)
    for line in lines:
        pdf.cell(170, 8, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(20)
    return bytes(pdf.output())


def page_image(lines: list[str], *, dpi: int = 150) -> Image.Image:
    """An A4 page at ``dpi`` with the lines drawn in black, as a scanner returns it.

    Pillow's built-in font (no system fonts needed) at about 11 pt.
    """
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    size = round(11 / 72 * dpi * 1.3)
    font = ImageFont.load_default(size=size)
    y = round(0.8 * dpi)
    for line in lines:
        draw.text((round(0.8 * dpi), y), line, fill=0, font=font)
        y += round(size * 1.9)
    return image


def image_pdf(image: Image.Image) -> bytes:
    """A PDF whose only content is ``image`` filling an A4 page: no text layer."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def encrypted(pdf_bytes: bytes, password: str = "supplier-secret") -> bytes:
    """The PDF locked with a user password (AES-256), as a cautious supplier sends it."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes)))
    writer.encrypt(user_password=password, owner_password=None, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_bytes(doc: SampleDocument, variant: Variant) -> bytes:
    lines = lines_of(doc)
    if variant is Variant.TEXT_PDF:
        return text_pdf(lines)
    if variant is Variant.SCANNED_PDF:
        return image_pdf(page_image(lines))
    if variant is Variant.PNG:
        return png(page_image(lines))
    if variant is Variant.TEXT:
        return ("\n".join(lines) + "\n").encode()
    if variant is Variant.CORRUPT:
        whole = text_pdf(lines)
        # A transfer cut short: the header survives, the objects and trailer do not.
        return whole[: min(len(whole) // 3, 400)]
    return encrypted(text_pdf(lines))


def render(doc: SampleDocument, path: Path, variant: Variant = Variant.TEXT_PDF) -> Path:
    """Write ``doc`` to ``path`` (its suffix replaced by the variant's) and return it."""
    path = path.with_suffix(SUFFIX[variant])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_bytes(doc, variant))
    return path
