"""The extractor interface: a read document in, its kind and fields out.

Two implementations share it: the rules (offline, always there) and the LLM
(``supplier_docs.llm``, only for a tenant that stored its own key). Whatever an
extractor returns is in the lake's forms, checked by ``fields.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from supplier_docs.classify import classify
from supplier_docs.fields import FieldValue, extract_fields
from supplier_docs.reading import ReadDocument


@dataclass
class Extraction:
    doc_type: str
    doc_type_confidence: float
    method: str
    """``text`` or ``ocr`` for the rules (how the text was read), ``llm`` for the LLM."""
    fields: list[FieldValue] = field(default_factory=list)


class Extractor(Protocol):
    name: str

    def extract(self, document: ReadDocument) -> Extraction: ...


class RulesExtractor:
    """Labels, regexes and phrase scores: no network, no model, same answer every run."""

    name = "rules"

    def extract(self, document: ReadDocument) -> Extraction:
        doc_type, confidence = classify(document.text)
        return Extraction(doc_type, confidence, document.method, extract_fields(document))
