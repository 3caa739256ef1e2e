"""Lead score bodies encoded without building a pydantic model per row.

The ``...Public`` models (serving/schemas.py) define what leaves the platform, and
the OpenAPI document comes from them. Building one per row, though, costs several
times the serialization: ``from_row``, the reasons parsed into models, validation.
A publish has already checked the contract (types, ranges, ``reasons_json``), so a
served row needs no validation again; these encoders write the same JSON directly,
with orjson, and are byte-identical to ``model.from_row(row).model_dump_json()``
(tests/test_serving_encoders.py compares them on published rows and on edge values).

Values are coerced as pydantic's validation would (an int in a float field is
written ``1.0``); a row that does not fit (a malformed ``reasons_json``, a missing
column) goes through the pydantic model instead, which says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, get_args

import orjson

from serving.schemas import Grade, LeadScoreHistoryPublic, LeadScorePublic, ScoreStatus
from serving.store import Row

_OPTIONS = orjson.OPT_UTC_Z


class _Unfit(ValueError):
    """A value the model would coerce differently or refuse: the model encodes the row."""


def _int(value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise _Unfit


def _score(value: Any) -> int | None:
    if value is None or (type(value) is int and 0 <= value <= 100):
        return value
    raise _Unfit


def _float(value: Any) -> float | None:
    if value is None or type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _Unfit


def _bool(value: Any) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise _Unfit


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unfit


def _maybe_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _one_of(value: Any, allowed: frozenset[str | None]) -> str | None:
    if value in allowed and (value is None or type(value) is str):
        return value
    raise _Unfit


_GRADES: frozenset[str | None] = frozenset({*(g.value for g in Grade), None})
_STATUSES: frozenset[str | None] = frozenset(get_args(ScoreStatus))


def _moment(value: Any) -> datetime:
    if type(value) is datetime:
        return value
    raise _Unfit


def _reasons(text: str | None) -> list[dict[str, Any]]:
    """``reasons_json`` as ``ScoreReasonPublic`` writes it (``factor`` repeats ``code``)."""
    if not text:
        return []
    items = orjson.loads(text)
    if not isinstance(items, list):
        raise ValueError("reasons_json is not a list")
    out = []
    for item in items:
        points = item["points"]
        if not isinstance(points, int) or isinstance(points, bool):
            raise ValueError("reasons_json points must be integers")
        code = str(item["code"])
        evidence = item.get("evidence")
        out.append(
            {
                "code": code,
                "label": str(item["label"]),
                "points": points,
                "evidence": None if evidence is None else str(evidence),
                "factor": code,
            }
        )
    return out


def _short_reasons(text: str | None) -> list[dict[str, Any]]:
    """``code:+points|...`` as ``ShortReasonPublic`` writes it."""
    if not text:
        return []
    out = []
    for part in text.split("|"):
        factor, _, points = part.rpartition(":")
        out.append({"code": factor, "points": int(points)})
    return out


def _lead_score(row: Row) -> bytes:
    return orjson.dumps(
        {
            "tenant_id": _text(row["tenant_id"]),
            "lead_id": _text(row["lead_id"]),
            "email": _text(row["email"]),
            "first_name": _maybe_text(row["first_name"]),
            "last_name": _maybe_text(row["last_name"]),
            "company": _maybe_text(row["company"]),
            "title": _maybe_text(row["title"]),
            "score_status": _one_of(row["score_status"], _STATUSES),
            "score": _score(row["score"]),
            "grade": _one_of(row["grade"], _GRADES),
            "probability": _float(row["probability"]),
            "fit_score": _int(row["fit_score"]),
            "engagement_score": _int(row["engagement_score"]),
            "mql": _bool(row["is_mql"]),
            "reasons": _reasons(row.get("reasons_json")),
            "score_model": _text(row["score_model"]),
            "model_version": _text(row["model_version"]),
            "config_version": _maybe_text(row["config_version"]),
            "scored_at": _moment(row["scored_at"]),
            "created_at": _moment(row["created_at"]),
            "published_at": _moment(row["published_at"]),
        },
        option=_OPTIONS,
    )


def _lead_score_history(row: Row) -> bytes:
    return orjson.dumps(
        {
            "scored_at": _moment(row["scored_at"]),
            "score_status": _one_of(row["score_status"], _STATUSES),
            "score": _score(row["score"]),
            "grade": _one_of(row["grade"], _GRADES),
            "probability": _float(row["probability"]),
            "fit_score": _int(row["fit_score"]),
            "engagement_score": _int(row["engagement_score"]),
            "mql": _bool(row["is_mql"]),
            "score_model": _text(row["score_model"]),
            "model_version": _text(row["model_version"]),
            "config_version": _maybe_text(row["config_version"]),
            "reasons": _short_reasons(row.get("reasons")),
        },
        option=_OPTIONS,
    )


def _with_fallback(fast: Callable[[Row], bytes], model: Any) -> Callable[[Row], bytes]:
    def encode(row: Row) -> bytes:
        try:
            return fast(row)
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
            # The model's own error names the field; a publish should have refused it.
            return bytes(model.from_row(row).model_dump_json().encode())

    encode.__doc__ = f"Row -> the JSON of ``{model.__name__}``, without a model per row."
    return encode


encode_lead_score: Callable[[Row], bytes] = _with_fallback(_lead_score, LeadScorePublic)
encode_lead_score_history: Callable[[Row], bytes] = _with_fallback(
    _lead_score_history, LeadScoreHistoryPublic
)
