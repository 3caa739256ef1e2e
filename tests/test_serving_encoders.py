"""The lead encoders without a model per row write exactly what the pydantic models write.

Clients rely on the bytes (ETags, caches, the OpenAPI schema): serving/encoders.py
must give ``Model.from_row(row).model_dump_json()`` for every row a publish can
hold, including the odd ones below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from core.contracts.score_shape import ReasonsError
from serving.encoders import encode_lead_score, encode_lead_score_history
from serving.routes.responses import encoder
from serving.schemas import LeadScoreHistoryPublic, LeadScorePublic
from tests.test_serving_contract import history_rows, lead_score_rows

by_model = encoder(LeadScorePublic)
history_by_model = encoder(LeadScoreHistoryPublic)


def published(row: dict[str, Any]) -> dict[str, Any]:
    """A row as a reader returns it: with its publish time."""
    return {**row, "published_at": datetime(2026, 11, 28, 9, 30, tzinfo=UTC)}


def odd_rows() -> list[dict[str, Any]]:
    """Rows at the edges of what the contract allows."""
    base = published(lead_score_rows("acme", 1)[0])
    reasons = [
        {"code": "tïtle", "label": 'quote " back\\slash \u2028 \x01 😀', "points": -7},
        {"code": 5, "label": "numeric code", "points": 0, "evidence": 12},
    ]
    return [
        {**base, "probability": 1, "score": 0, "fit_score": 0, "engagement_score": 0},
        {**base, "probability": 1e-7, "score": 100},
        {**base, "probability": 0.1 + 0.2},
        {
            **base,
            "score": None,
            "grade": None,
            "probability": None,
            "fit_score": None,
            "engagement_score": None,
            "is_mql": None,
            "score_status": "unknown",
            "reasons_json": "[]",
        },
        {**base, "first_name": None, "last_name": None, "company": None, "title": None},
        {**base, "first_name": "Zoë </script>", "email": "ünïcode@example.com"},
        {**base, "reasons_json": json.dumps(reasons, ensure_ascii=False)},
        {**base, "reasons_json": ""},
        {**base, "scored_at": datetime(2026, 1, 6, 9, 0, 0, 1, tzinfo=UTC)},
        {**base, "scored_at": datetime(2026, 1, 6, 9, tzinfo=timezone(timedelta(hours=-5)))},
        {**base, "created_at": datetime(2026, 1, 6, 9, 0, 0, 120000)},
    ]


def test_lead_bodies_are_the_models_bytes() -> None:
    rows = [published(r) for r in lead_score_rows("acme", 300)] + odd_rows()
    for row in rows:
        assert encode_lead_score(row) == by_model(row), row


def test_history_bodies_are_the_models_bytes() -> None:
    rows = history_rows("acme", "lead-1", 12) + history_rows("acme", "lead-2", 3, offset=40)
    rows.append({**rows[0], "probability": 1, "reasons": "a:b:+3|c:-12"})
    rows.append({**rows[0], "config_version": None, "reasons": None})
    for row in rows:
        assert encode_lead_score_history(row) == history_by_model(row), row


def test_a_row_the_contract_refuses_gets_the_models_error() -> None:
    """A malformed row is not written silently: the model says what is wrong."""
    row = published(lead_score_rows("acme", 1)[0])
    with pytest.raises(ReasonsError, match="points must be an integer"):
        encode_lead_score({**row, "reasons_json": '[{"code": "a", "label": "a", "points": "x"}]'})
    for column, value in [("email", None), ("score", 101), ("grade", "E"), ("lead_id", 7)]:
        with pytest.raises(ValidationError, match=column):
            encode_lead_score({**row, column: value})
