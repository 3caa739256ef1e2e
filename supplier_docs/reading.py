"""A document's bytes turned into pages of text lines, or a reason it cannot be read.

What a file is comes from its first bytes, not its name. A PDF's own text layer
is used when a page has one (exact, and cheap); a page without one (a scan) is
rendered with PDFium and read by OCR, as are images. Every line keeps where it
was: its number on the page and, for OCR, its box in pixels, so each extracted
field can say where it came from.

A file that cannot be read raises ``Rejected`` with one of ``REASONS``; the
caller quarantines it and goes on with the batch.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pypdfium2 as pdfium
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from supplier_docs import ocr

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = (
    "corrupt",
    "encrypted",
    "empty",
    "oversized",
    "unsupported",
    "timeout",
)
"""Why a document was quarantined; the quarantine reason starts with one of these."""

OCR_DPI = 200
"""Scans are rendered at this resolution for OCR: at 150 OCR drops more spaces."""
MAX_PAGE_PIXELS = 30_000_000
"""A page or image larger than this (a 300 dpi A0 sheet) is not rendered."""
MIN_TEXT_LAYER_CHARS = 16
"""A PDF page with fewer visible characters in its text layer is treated as a scan."""


class Rejected(Exception):
    """The document cannot be read; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Line:
    """One line of a page: its 1-based number on the page, text and, for OCR, box."""

    number: int
    text: str
    box: tuple[int, int, int, int] | None = None
    confidence: float = 1.0

    def location(self, start: int, end: int) -> str:
        """Where ``text[start:end]`` sits, in the form the lake's ``location`` keeps."""
        if self.box is None:
            return f"line {self.number}, chars {start + 1}-{end}"
        return f"line {self.number}, box {','.join(str(v) for v in self.box)}"


@dataclass
class Page:
    number: int
    method: str
    """``text`` (the PDF's text layer or a text file) or ``ocr``."""
    lines: list[Line] = field(default_factory=list)


@dataclass
class ReadDocument:
    media_type: str
    page_count: int
    pages: list[Page] = field(default_factory=list)

    @property
    def method(self) -> str:
        return "ocr" if any(p.method == "ocr" for p in self.pages) else "text"

    @property
    def text(self) -> str:
        return "\n".join(line.text for page in self.pages for line in page.lines)

    @property
    def text_chars(self) -> int:
        return sum(len(line.text) for page in self.pages for line in page.lines)

    def lines(self) -> Iterator[tuple[Page, Line]]:
        for page in self.pages:
            for line in page.lines:
                yield page, line


def media_type(data: bytes) -> str | None:
    """The media type the bytes say they are, None when not one we read."""
    if data.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if b"\x00" not in data[:8192]:
        try:
            data[:8192].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < 8188:  # not just a character cut at the sample's end
                return None
        return "text/plain"
    return None


KNOWN_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".txt"}


def read_document(data: bytes, name: str, *, max_pages: int) -> ReadDocument:
    """Read ``data`` (the file ``name``); raises Rejected with the reason."""
    if not data.strip():
        raise Rejected("empty", "the file has no content")
    kind = media_type(data)
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind is None:
        if suffix in KNOWN_SUFFIXES:
            raise Rejected("corrupt", f"not a readable {suffix[1:].upper()} file")
        raise Rejected("unsupported", "not a PDF, PNG, JPEG, TIFF or plain text file")
    if kind == "application/pdf":
        document = _read_pdf(data, max_pages=max_pages)
    elif kind == "text/plain":
        document = _read_text(data)
    else:
        document = _read_image(data, kind, max_pages=max_pages)
    if document.text_chars == 0:
        raise Rejected("empty", f"no text found on {document.page_count} page(s)")
    return document


def _read_text(data: bytes) -> ReadDocument:
    text = data.decode("utf-8-sig", errors="replace")
    lines = [
        Line(number, raw.strip())
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip()
    ]
    return ReadDocument("text/plain", 1, [Page(1, "text", lines)])


def _read_pdf(data: bytes, *, max_pages: int) -> ReadDocument:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # An owner password only restricts printing or copying: readable.
            try:
                opened = reader.decrypt("")
            except (NotImplementedError, PdfReadError) as exc:
                raise Rejected("encrypted", f"cannot be decrypted ({exc})") from None
            if not opened:
                raise Rejected("encrypted", "the PDF needs a password to open")
        count = len(reader.pages)
    except Rejected:
        raise
    except FileNotDecryptedError:
        raise Rejected("encrypted", "the PDF needs a password to open") from None
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise Rejected("corrupt", f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    if count == 0:
        raise Rejected("empty", "the PDF has no pages")
    if count > max_pages:
        raise Rejected("oversized", f"{count} pages, over the limit of {max_pages}")

    document = ReadDocument("application/pdf", count)
    scanned: list[int] = []
    for index, page in enumerate(reader.pages):
        try:
            text = page.extract_text() or ""
        except Exception as exc:
            raise Rejected(
                "corrupt", f"page {index + 1} cannot be read ({type(exc).__name__}: {exc})"
            ) from None
        if sum(not c.isspace() for c in text) >= MIN_TEXT_LAYER_CHARS:
            lines = [
                Line(number, raw.strip())
                for number, raw in enumerate(text.splitlines(), start=1)
                if raw.strip()
            ]
            document.pages.append(Page(index + 1, "text", lines))
        else:
            document.pages.append(Page(index + 1, "ocr"))
            scanned.append(index)
    if scanned:
        _ocr_pdf_pages(data, document, scanned)
    return document


def _ocr_pdf_pages(data: bytes, document: ReadDocument, indexes: list[int]) -> None:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise Rejected("corrupt", f"pages cannot be rendered ({exc})") from None
    try:
        for index in indexes:
            page = pdf[index]
            width, height = page.get_size()  # points
            scale = OCR_DPI / 72
            if width * height * scale * scale > MAX_PAGE_PIXELS:
                raise Rejected(
                    "oversized", f"page {index + 1} is {width / 72:.0f}x{height / 72:.0f} inches"
                )
            image = page.render(scale=scale, grayscale=True).to_pil()
            document.pages[index].lines = _ocr_lines(image)
    finally:
        pdf.close()


def _read_image(data: bytes, kind: str, *, max_pages: int) -> ReadDocument:
    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
        if frames > max_pages:
            raise Rejected("oversized", f"{frames} pages, over the limit of {max_pages}")
        if image.width * image.height > MAX_PAGE_PIXELS:
            raise Rejected("oversized", f"{image.width}x{image.height} pixels")
        document = ReadDocument(kind, frames)
        for frame in range(frames):
            image.seek(frame)
            image.load()
            document.pages.append(Page(frame + 1, "ocr", _ocr_lines(image)))
    except Rejected:
        raise
    except Image.DecompressionBombError as exc:
        raise Rejected("oversized", str(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Rejected("corrupt", f"not a readable image ({exc})") from None
    return document


def _ocr_lines(image: Image.Image) -> list[Line]:
    return [
        Line(number, found.text, found.box, found.confidence)
        for number, found in enumerate(ocr.read_image(image), start=1)
    ]
