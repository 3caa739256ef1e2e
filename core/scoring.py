"""Lead grade bands: read from the dbt seed that the SQL models join, so Python
(contracts, the API's enum, tests) and SQL cannot disagree on a band edge."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent.parent / "dbt" / "seeds"
GRADE_BANDS_SEED = SEEDS_DIR / "lead_grade_bands.csv"


@dataclass(frozen=True)
class GradeBand:
    grade: str
    min_score: int
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


GRADES: tuple[str, ...] = tuple(b.grade for b in grade_bands())
