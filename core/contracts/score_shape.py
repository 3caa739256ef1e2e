"""One shape for every score: the columns a score mart carries, defined once.

Lead scores and supplier risk (core/contracts/supplier_risk.py: the tier in
``grade``, five component risks) use it; sourcing opportunities are to reuse
it. A score row carries, beside its keys:

- ``score``: 0-100, or null with ``score_status`` ``unknown`` (too little known:
  no guess);
- ``grade``: its band (A-D for leads; a tier elsewhere), null when unknown;
- its components (per mart: ``fit_score`` and ``engagement_score`` for leads);
- ``reasons``: ``code:+points|code:-points`` (the top reasons, for humans and
  the v0 API) and ``reasons_json``: a JSON array of {code, label, points,
  evidence}, the evidence naming the record (activity, column, document)
  that produced the reason;
- ``score_model``, ``model_version``, ``config_version``: what produced it;
- ``scored_at``: when.

Every score mart has a history table with a row per key per ``scored_at``.
The dbt side is dbt/macros/scores/score_shape.sql (band, reason text and JSON);
this module is the Python side: names, types, and the parser of the reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

SCORE_STATUSES: tuple[str, ...] = ("scored", "unknown")

SCORE_SHAPE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("score", pa.int32()),
    pa.field("grade", pa.string()),
    pa.field("reasons", pa.string()),
    pa.field("score_model", pa.string(), nullable=False),
    pa.field("score_status", pa.string(), nullable=False),
    pa.field("reasons_json", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("config_version", pa.string()),
    pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),
)
SCORE_SHAPE_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCORE_SHAPE_FIELDS)


class ReasonsError(ValueError):
    """``reasons_json`` that is not a list of {code, label, points, evidence}."""


@dataclass(frozen=True)
class Reason:
    """One reason of a score: what, in words, how many points (signed), and the proof."""

    code: str
    label: str
    points: int
    evidence: str | None


def parse_reasons_json(text: str | None) -> list[Reason]:
    """The reasons of ``reasons_json``, in their order (positives first, biggest first)."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReasonsError(f"reasons_json is not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ReasonsError(f"reasons_json must be a list, got {type(items).__name__}")
    reasons = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"code", "label", "points"} <= set(item):
            raise ReasonsError(f"reasons_json[{i}] needs code, label and points, got {item!r}")
        points = item["points"]
        if not isinstance(points, int) or isinstance(points, bool):
            raise ReasonsError(f"reasons_json[{i}].points must be an integer, got {points!r}")
        evidence = item.get("evidence")
        reasons.append(
            Reason(
                code=str(item["code"]),
                label=str(item["label"]),
                points=points,
                evidence=None if evidence is None else str(evidence),
            )
        )
    return reasons
