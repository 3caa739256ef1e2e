"""Lead grade bands and score points: read from the dbt seeds that the SQL models
join, so Python (contracts, the API's enum, tests) and SQL cannot disagree on a
band edge or a factor's points."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent.parent / "dbt" / "seeds"
GRADE_BANDS_SEED = SEEDS_DIR / "lead_grade_bands.csv"
SCORE_POINTS_SEED = SEEDS_DIR / "lead_score_points.csv"


@dataclass(frozen=True)
class GradeBand:
    grade: str
    min_score: int
    description: str


@dataclass(frozen=True)
class ScorePoints:
    """One rule of one factor: ``int_leads_scored`` decides which rule a lead
    matches, this says what the rule is worth."""

    factor: str
    rule: str
    points: int
    description: str


@cache
def grade_bands() -> tuple[GradeBand, ...]:
    """The bands, best first (highest ``min_score``)."""
    with GRADE_BANDS_SEED.open(newline="", encoding="utf-8") as fh:
        bands = [
            GradeBand(row["grade"], int(row["min_score"]), row["description"])
            for row in csv.DictReader(fh)
        ]
    bands.sort(key=lambda b: b.min_score, reverse=True)
    if not bands or bands[-1].min_score != 0:
        raise ValueError(f"{GRADE_BANDS_SEED}: the lowest band must start at score 0")
    return tuple(bands)


def grade_for(score: int) -> str:
    """The grade of a 0-100 score."""
    for band in grade_bands():
        if score >= band.min_score:
            return band.grade
    raise ValueError(f"score {score} is below every band")


@cache
def score_points() -> tuple[ScorePoints, ...]:
    """Every (factor, rule) of the v0 score with its points, in seed order."""
    with SCORE_POINTS_SEED.open(newline="", encoding="utf-8") as fh:
        rows = [
            ScorePoints(row["factor"], row["rule"], int(row["points"]), row["description"])
            for row in csv.DictReader(fh)
        ]
    seen = {(r.factor, r.rule) for r in rows}
    if len(seen) != len(rows):
        raise ValueError(f"{SCORE_POINTS_SEED}: a (factor, rule) appears twice")
    return tuple(rows)


def points_for(factor: str, rule: str) -> int:
    """What one rule of one factor is worth."""
    for row in score_points():
        if (row.factor, row.rule) == (factor, rule):
            return row.points
    raise KeyError(f"{SCORE_POINTS_SEED} has no rule {rule!r} for factor {factor!r}")


def max_score() -> int:
    """The most a lead can score: the best rule of every factor, summed."""
    best: dict[str, int] = {}
    for row in score_points():
        best[row.factor] = max(best.get(row.factor, 0), row.points)
    return sum(best.values())


GRADES: tuple[str, ...] = tuple(b.grade for b in grade_bands())
