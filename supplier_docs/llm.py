"""The LLM extractor: a tenant's own model reads the document, the rules check it.

Off unless the tenant stored a key (``bizos credentials set --tenant T --source
llm``). It speaks the OpenAI-compatible chat-completions API
(``POST {BIZOS_LLM_BASE_URL}/chat/completions``), which OpenAI, Azure OpenAI,
vLLM, Ollama and most gateways serve. The model is asked for JSON naming, for
each field, the value and the page and line it read it from; every value then
goes through ``fields.validate`` like the rules' values, and a value whose line
does not exist is dropped, so nothing lands without evidence. A failed request
is an ``LlmError``: the caller falls back to the rules.

The key is sent as a bearer token and appears in no message, log or exception.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

import credentials
from core.contracts.supplier_docs import DOC_TYPES, FIELDS
from core.settings import Settings
from supplier_docs.extraction import Extraction
from supplier_docs.fields import FieldValue, validate
from supplier_docs.reading import ReadDocument
from supplier_docs.values import fold

log = logging.getLogger(__name__)

CREDENTIAL_SOURCE = "llm"
"""The credential name a tenant stores its key under."""
MAX_PROMPT_CHARS = 24_000
"""Text sent per document; supplier paperwork fits, a 30-page scan is cut."""
MAX_ATTEMPTS = 3
LLM_CONFIDENCE = 0.8
"""The most a model's value is trusted; less when its quote is not on its line."""

INSTRUCTIONS = (
    "You read supplier compliance documents. Reply with one JSON object: "
    '{"doc_type": one of ' + ", ".join(DOC_TYPES) + ", "
    '"fields": [{"field": one of ' + ", ".join(FIELDS) + ', "value": the text as '
    'printed, "page": page number, "line": line number}]}. '
    "legal_name is the supplier the document is about; issuer is who issued it; "
    "document_number is the policy, certificate, licence, tax id or account number; "
    "coverage_amount is the largest limit of cover and currency its currency. "
    "Leave out fields the document does not state. Lines are given as "
    "'[page:line] text'."
)


class LlmError(RuntimeError):
    """The LLM could not be asked or its answer not read (never holds the key)."""


def prompt_text(document: ReadDocument) -> str:
    lines = [f"[{page.number}:{line.number}] {line.text}" for page, line in document.lines()]
    text = "\n".join(lines)
    return text[:MAX_PROMPT_CHARS]


class LlmExtractor:
    name = "llm"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}"},
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LlmExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ask(self, document: ReadDocument) -> dict[str, Any]:
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": prompt_text(document)},
            ],
        }
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise LlmError(f"LLM request failed: {type(exc).__name__}") from None
                time.sleep(min(2.0**attempt, 10.0))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == MAX_ATTEMPTS:
                    raise LlmError(f"LLM answered HTTP {response.status_code}")
                wait = response.headers.get("Retry-After", "")
                time.sleep(min(float(wait) if wait.isdigit() else 2.0**attempt, 10.0))
                continue
            if response.status_code != 200:
                raise LlmError(f"LLM answered HTTP {response.status_code}")
            try:
                content = response.json()["choices"][0]["message"]["content"]
                answer = json.loads(content)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise LlmError(f"LLM answer is not the expected JSON ({exc})") from None
            if not isinstance(answer, dict):
                raise LlmError("LLM answer is not a JSON object")
            return answer
        raise LlmError("LLM not reached")  # unreachable: the loop returns or raises

    def extract(self, document: ReadDocument) -> Extraction:
        answer = self._ask(document)
        doc_type = answer.get("doc_type")
        if doc_type not in DOC_TYPES:
            doc_type = "other"
        fields = checked_fields(document, answer.get("fields"))
        return Extraction(str(doc_type), LLM_CONFIDENCE, "llm", fields)


def checked_fields(document: ReadDocument, proposed: object) -> list[FieldValue]:
    """The model's fields that pass validation and point at a real line; best per field."""
    lines = {(page.number, line.number): (page, line) for page, line in document.lines()}
    best: dict[str, FieldValue] = {}
    for item in proposed if isinstance(proposed, list) else []:
        if not isinstance(item, dict):
            continue
        name, raw = item.get("field"), item.get("value")
        if name not in FIELDS or not isinstance(raw, str | int | float):
            continue
        try:
            where = lines.get((int(item.get("page", 0)), int(item.get("line", 0))))
        except (TypeError, ValueError):
            where = None
        value = validate(str(name), str(raw))
        if value is None or where is None:
            continue
        page, line = where
        quoted = fold(line.text).find(fold(str(raw).strip()))
        if quoted >= 0:
            location = line.location(quoted, quoted + len(str(raw).strip()))
            confidence = LLM_CONFIDENCE
        else:
            location = f"line {line.number}"
            confidence = LLM_CONFIDENCE * 0.6
        candidate = FieldValue(str(name), value, confidence, page.number, location, "llm")
        held = best.get(candidate.field)
        if held is None or candidate.confidence > held.confidence:
            best[candidate.field] = candidate
    return [best[name] for name in FIELDS if name in best]


def tenant_extractor(settings: Settings, tenant_id: str, *, actor: str) -> LlmExtractor | None:
    """The LLM extractor for a tenant that stored a key under ``llm``, else None.

    The default is None: extraction stays offline unless the tenant opted in.
    Reading the key is audited like every credential read.
    """
    listed = credentials.list_credentials(settings, tenant_id)
    if not any(c.source == CREDENTIAL_SOURCE for c in listed):
        return None
    key = credentials.get_secret(
        settings, tenant_id=tenant_id, source=CREDENTIAL_SOURCE, actor=actor
    )
    return LlmExtractor(
        base_url=settings.llm_base_url,
        api_key=key,
        model=settings.llm_model,
        timeout_s=settings.llm_timeout_s,
    )
