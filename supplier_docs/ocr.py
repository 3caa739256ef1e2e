"""OCR of page images with RapidOCR (PaddleOCR's PP-OCRv4 models on ONNX Runtime).

Chosen because ``rapidocr-onnxruntime`` is a pip wheel that ships its detection,
direction and recognition models (about 15 MB) and runs on ONNX Runtime's CPU
wheel: ``make env`` installs it on a bare machine, with no system package
(Tesseract needs one) and no model download at run time (the machines here have
no internet, and production tenants' documents should not leave the host
either). Its OpenCV dependency is pinned to the headless build in pyproject, so
no libGL is needed.

The engine is loaded once per process (about a second) and shared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageOps

MIN_TEXT_SCORE = 0.5
"""Lines recognised with less confidence are dropped (RapidOCR's own default)."""

_lock = threading.Lock()


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, box in page pixels and recognition score."""

    text: str
    box: tuple[int, int, int, int]
    """left, top, right, bottom, in pixels of the image handed to ``read_image``."""
    confidence: float


@cache
def engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(text_score=MIN_TEXT_SCORE)


def _content_box(gray: Image.Image, pad: int = 16) -> tuple[int, int, int, int] | None:
    """The part of the page with ink on it: OCR time grows with the pixels it scans,
    and a scanned page is mostly margin."""
    ink = ImageOps.invert(gray).point(lambda p: 255 if p > 48 else 0)
    box = ink.getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (
        max(left - pad, 0),
        max(top - pad, 0),
        min(right + pad, gray.width),
        min(bottom + pad, gray.height),
    )


def read_image(image: Image.Image) -> list[OcrLine]:
    """The lines of text in ``image``, top to bottom then left to right."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # A transparent background is black once the alpha is dropped: paper is white.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    gray = image.convert("L")
    box = _content_box(gray)
    if box is None:
        return []
    crop = gray.crop(box).convert("RGB")
    with _lock:  # one ONNX session per process; it uses every core already
        result, _ = engine()(np.asarray(crop), use_cls=False)
    lines = []
    for points, text, score in result or []:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        lines.append(
            OcrLine(
                text=str(text),
                box=(
                    round(min(xs)) + box[0],
                    round(min(ys)) + box[1],
                    round(max(xs)) + box[0],
                    round(max(ys)) + box[1],
                ),
                confidence=float(score),
            )
        )
    return sorted(lines, key=lambda line: (line.box[1] // 10, line.box[0]))
