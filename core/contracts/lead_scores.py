"""The lead-scores serving contract: ``analytics.mart_lead_scores`` as the API serves it.

``docs/contracts.md`` names the columns. Publishing checks a table against this
contract *before* anything is written, so reads can parse ``reasons`` strictly
because it was validated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from core.contracts.score_shape import (
    SCORE_SHAPE_FIELDS,
    SCORE_STATUSES,
    ReasonsError,
    parse_reasons_json,
)
from core.contracts.table import ContractError, TableContract
from core.scoring import GRADES

__all__ = [
    "LEAD_SCORES",
    "LEAD_SCORE_COLUMNS",
    "LEAD_SCORE_COMPONENTS",
    "LEAD_SCORE_MART_SCHEMA",
    "LEAD_SCORE_SCHEMA",
    "SERVED_COLUMNS",
    "UNKNOWN_SCORE_SORTS_AS",
    "ContractError",
    "ScoreReason",
    "conform_lead_scores",
    "parse_reasons",
]

LEAD_SCORE_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("lead_id", pa.string(), nullable=False),
        pa.field("email", pa.string(), nullable=False),
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("company", pa.string()),
        pa.field("title", pa.string()),
        pa.field("industry", pa.string()),
        pa.field("company_size", pa.string()),
        pa.field("country", pa.string()),
        pa.field("source", pa.string()),
        pa.field("status", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("score", pa.int32(), nullable=False),
        pa.field("grade", pa.string(), nullable=False),
        pa.field("reasons", pa.string()),
        pa.field("score_model", pa.string(), nullable=False),
    ]
)

LEAD_SCORE_COMPONENTS: tuple[str, ...] = ("fit_score", "engagement_score")
"""The lead score's components (the score shape's per-mart part)."""

LEAD_SCORE_MART_SCHEMA = pa.schema(
    [
        *[
            f
            for f in LEAD_SCORE_SCHEMA
            if f.name not in {"score", "grade", "reasons", "score_model"}
        ],
        *(f for f in SCORE_SHAPE_FIELDS if f.name in {"score", "grade", "reasons", "score_model"}),
        pa.field("score_status", pa.string(), nullable=False),
        pa.field("probability", pa.float64()),
        pa.field("fit_score", pa.int32()),
        pa.field("engagement_score", pa.int32()),
        pa.field("is_mql", pa.bool_()),
        *(
            f
            for f in SCORE_SHAPE_FIELDS
            if f.name in {"reasons_json", "model_version", "config_version", "scored_at"}
        ),
    ]
)
"""``analytics.mart_lead_scores`` in full, as ``serving.lead_scores`` holds it (serving_0003):
the v0 columns above, then the rest of the score shape (core/contracts/score_shape.py).
Score and grade are null for an unknown lead."""

# `factor:+points` joined by `|`; factor names may hold anything but the two separators.
_REASON = r"[^:|]+:[+-]?\d+"
_REASONS_RE = re.compile(rf"^(?:{_REASON}(?:\|{_REASON})*)?$")


def score_in_range(table: pa.Table) -> None:
    score = table["score"]
    if pc.any(pc.or_(pc.less(score, 0), pc.greater(score, 100))).as_py():
        raise ContractError("score must be between 0 and 100")


def grade_is_a_band(table: pa.Table) -> None:
    grade = pc.drop_null(table["grade"])
    bad = pc.unique(pc.filter(grade, pc.invert(pc.is_in(grade, pa.array(GRADES)))))
    if len(bad):
        raise ContractError(f"grade must be one of {GRADES}, got {bad.to_pylist()[:5]}")


def reasons_well_formed(table: pa.Table) -> None:
    reasons = pc.drop_null(table["reasons"])
    malformed = pc.filter(
        reasons, pc.invert(pc.match_substring_regex(reasons, _REASONS_RE.pattern))
    )
    if len(malformed):
        raise ContractError(
            f"reasons must look like 'factor:+points|...', got {malformed.to_pylist()[:3]}"
        )


def unknown_means_no_score(table: pa.Table) -> None:
    """``score_status`` is scored or unknown, and only an unknown lead lacks a score:
    the API tells "no guess" from "scored" by it."""
    status = table["score_status"]
    bad = pc.unique(pc.filter(status, pc.invert(pc.is_in(status, pa.array(SCORE_STATUSES)))))
    if len(bad):
        raise ContractError(
            f"score_status must be one of {SCORE_STATUSES}, got {bad.to_pylist()[:5]}"
        )
    unknown = pc.equal(status, "unknown")
    no_score = pc.is_null(table["score"])
    if pc.any(pc.not_equal(unknown, no_score)).as_py():
        raise ContractError("score must be null exactly when score_status is 'unknown'")


def _reasons_json_parse(table: pa.Table) -> None:
    """Every ``reasons_json`` parses, so the API can serve it strictly (never a 500)."""
    for i, text in enumerate(table["reasons_json"].to_pylist()):
        try:
            parse_reasons_json(text)
        except ReasonsError as exc:
            lead = table["lead_id"][i].as_py()
            raise ContractError(f"lead {lead!r}: {exc}") from None


UNKNOWN_SCORE_SORTS_AS = -1
"""Where an unknown (null) score sorts in the API's order: after every score."""

LEAD_SCORES = TableContract(
    name="lead_scores",
    mart="mart_lead_scores",
    schema=LEAD_SCORE_MART_SCHEMA,
    primary_key=("tenant_id", "lead_id"),
    order_by=("-score", "lead_id"),
    row_rules=(
        score_in_range,
        grade_is_a_band,
        reasons_well_formed,
        unknown_means_no_score,
        _reasons_json_parse,
    ),
    description="Scores, components, reasons and model of a tenant's leads",
    nulls_sort_as=(("score", UNKNOWN_SCORE_SORTS_AS),),
)
LEAD_SCORE_COLUMNS: tuple[str, ...] = LEAD_SCORES.columns
SERVED_COLUMNS: tuple[str, ...] = LEAD_SCORES.served_columns


@dataclass(frozen=True)
class ScoreReason:
    """One factor of a score and the points it contributed."""

    factor: str
    points: int


def conform_lead_scores(tenant_id: str, table: pa.Table | pa.RecordBatchReader) -> pa.Table:
    """``LEAD_SCORES.conform``: the table cast to the schema, or ContractError."""
    return LEAD_SCORES.conform(tenant_id, table)


def parse_reasons(text: str | None) -> list[ScoreReason]:
    """Split ``title_seniority:+25|company_size:+20`` into factors, keeping their order."""
    if not text:
        return []
    reasons = []
    for part in text.split("|"):
        factor, _, points = part.rpartition(":")
        reasons.append(ScoreReason(factor=factor, points=int(points)))
    return reasons
