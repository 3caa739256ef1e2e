"""Feature frames of a tenant's leads: fit, engagement and custom attributes, in polars.

The inputs are the dbt models ``int_leads_labelled`` (one row per lead: fit
attributes, custom attributes as JSON text, the label and ``features_as_of``)
and ``int_lead_touches`` (touches per lead, type and day). The output is one
numeric column per feature, one row per lead, sorted by ``lead_id``, plus what
each feature means and which record proves it.

The status and the outcome never become features: only the columns listed in
:data:`FIT_COLUMNS`, the touches and the custom attributes are read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from scoring.config import COMPANY_SIZES, SENIORITIES, TOUCH_TYPES, ScoringConfig

FIT_COLUMNS = ("title_seniority", "industry", "company_size", "country", "source", "is_free_mail")
"""The lead columns fit features read (besides the custom attributes)."""

MIN_CATEGORY_LEADS = 5
"""A category (industry, source, custom value) seen on fewer leads is not a feature of its own."""
MAX_NUMERIC_SHARE_BAD = 0.05
"""A custom column is numeric when at most this share of its non-empty values fail to parse."""


@dataclass(frozen=True)
class FeatureSpec:
    """One column of the feature matrix."""

    name: str
    kind: str
    """``fit`` (who the lead is, custom attributes included) or ``engagement`` (what it did)."""
    column: str
    """The lead column, custom attribute or touch type it is made from."""
    value: str | None = None
    """For a one-hot feature, the category it marks."""

    def label(self, x: float) -> str:
        """What the feature says about a lead whose value is ``x``, for a reason."""
        if self.kind == "engagement":
            return f"{self.column.replace('_', ' ')} activity (decayed {x:.2f})"
        if self.value is not None:
            return f"{self.column} is {'' if x >= 0.5 else 'not '}{self.value}"
        if self.name.startswith("icp."):
            return f"{self.column} {'matches' if x >= 0.5 else 'is outside'} the ideal profile"
        if self.name == "business_email":
            return "business email" if x >= 0.5 else "free-mail address"
        return f"{self.column} = {x:g}"


@dataclass(frozen=True)
class CustomAttributeDecision:
    """What the profiling decided for one extra export column, and why."""

    attribute: str
    decision: str
    """``numeric``, ``categorical`` or ``excluded``."""
    reason: str


@dataclass
class FeatureFrame:
    """A tenant's leads as model input."""

    leads: pl.DataFrame
    """lead_id, created_at, label, outcome, rules score, known_signals; one row per lead."""
    matrix: pl.DataFrame
    """One Float64 column per :attr:`specs`, rows aligned with :attr:`leads`."""
    specs: list[FeatureSpec]
    evidence: pl.DataFrame
    """lead_id, feature, evidence_ref: the newest touch behind an engagement feature. A fit
    feature's evidence is the export row's column (:func:`evidence_ref`)."""
    custom: list[CustomAttributeDecision] = field(default_factory=list)
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The categories of each one-hot column, so another frame can be built alike."""

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


# -- engagement ---------------------------------------------------------------


def decayed_touches(
    touches: pl.DataFrame, as_of: pl.DataFrame, config: ScoringConfig
) -> pl.DataFrame:
    """Per lead and touch type: sum over days of min(touches, cap) * 0.5 ** (age / half-life).

    ``touches``: lead_id, touch_type, touch_date, touches[, evidence_ref].
    ``as_of``: lead_id, as_of_date (touches after it are ignored: for a labelled
    lead they happened after the outcome was known).
    Returns lead_id, touch_type, decayed, evidence_ref (the newest record counted).
    """
    half_life = config.engagement.half_life_days
    caps = pl.DataFrame(
        {
            "touch_type": list(TOUCH_TYPES),
            "cap": [config.engagement.cap(t) for t in TOUCH_TYPES],
        },
        schema={"touch_type": pl.String, "cap": pl.Int64},
    )
    if "evidence_ref" not in touches.columns:
        touches = touches.with_columns(evidence_ref=pl.lit(None, dtype=pl.String))
    joined = (
        touches.join(caps, on="touch_type", how="inner")
        .join(as_of, on="lead_id", how="inner")
        .filter(pl.col("touch_date") <= pl.col("as_of_date"))
        .with_columns(
            age=(pl.col("as_of_date") - pl.col("touch_date")).dt.total_days(),
            counted=pl.min_horizontal(pl.col("touches"), pl.col("cap")),
        )
        .with_columns(weighted=pl.col("counted") * (0.5 ** (pl.col("age") / half_life)))
    )
    return (
        joined.sort(["lead_id", "touch_type", "touch_date", "evidence_ref"])
        .group_by(["lead_id", "touch_type"], maintain_order=True)
        .agg(decayed=pl.col("weighted").sum(), evidence_ref=pl.col("evidence_ref").last())
    )


# -- custom attributes ----------------------------------------------------------


def parse_custom_attributes(texts: Iterable[str | None]) -> list[dict[str, str]]:
    """JSON objects of the export's extra columns, every value as trimmed text ('' dropped)."""
    parsed: list[dict[str, str]] = []
    for text in texts:
        try:
            obj = json.loads(text) if text else {}
        except json.JSONDecodeError:
            obj = {}
        row = {}
        if isinstance(obj, dict):
            for key, value in obj.items():
                if value is None:
                    continue
                cell = str(value).strip()
                if cell:
                    row[str(key)] = cell
        parsed.append(row)
    return parsed


def _as_number(text: str) -> float | None:
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def profile_custom_attributes(
    rows: Sequence[dict[str, str]], config: ScoringConfig
) -> list[CustomAttributeDecision]:
    """Which extra columns become features: numbers numeric, few distinct texts
    categorical; ids, free text and high-cardinality text left out, unless the
    configuration includes or excludes the column by name."""
    settings = config.custom_attributes
    names = sorted({k for row in rows for k in row})
    decisions = []
    for name in names:
        values = [row[name] for row in rows if name in row]
        if name in settings.exclude:
            decisions.append(CustomAttributeDecision(name, "excluded", "excluded by configuration"))
            continue
        numbers = [_as_number(v) for v in values]
        bad = sum(n is None for n in numbers)
        distinct = len(set(values))
        if values and bad <= MAX_NUMERIC_SHARE_BAD * len(values) and distinct > 2:
            decisions.append(CustomAttributeDecision(name, "numeric", f"{len(values)} numbers"))
        elif name in settings.include:
            decisions.append(
                CustomAttributeDecision(name, "categorical", "included by configuration")
            )
        elif distinct <= 1:
            decisions.append(CustomAttributeDecision(name, "excluded", "a single value"))
        elif distinct > settings.max_categories:
            decisions.append(
                CustomAttributeDecision(
                    name,
                    "excluded",
                    f"{distinct} distinct values (id, free text or high cardinality; "
                    f"max_categories is {settings.max_categories})",
                )
            )
        else:
            decisions.append(
                CustomAttributeDecision(name, "categorical", f"{distinct} distinct values")
            )
    return decisions


# -- the frame ---------------------------------------------------------------


def evidence_ref(spec: FeatureSpec, lead_id: str) -> str:
    """The export cell a fit feature was read from (``crm_export.leads:<lead>#<column>``)."""
    column = spec.column.removeprefix("custom.")
    return f"crm_export.leads:{lead_id}#{column}"


def _code(value: str) -> str:
    """A category as part of a reason code: no ``:`` or ``|`` (the reasons' separators)."""
    return value.replace(":", "_").replace("|", "_")


def _levels(values: Sequence[str | None], minimum: int = MIN_CATEGORY_LEADS) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return tuple(sorted(v for v, n in counts.items() if n >= minimum))


def _to_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"features_as_of must be a date or datetime, got {type(value).__name__}")


def build_features(
    leads: pl.DataFrame,
    touches: pl.DataFrame,
    config: ScoringConfig,
    *,
    custom: bool = True,
    vocabulary: dict[str, tuple[str, ...]] | None = None,
) -> FeatureFrame:
    """The feature frame of one tenant's leads.

    ``vocabulary`` fixes the one-hot categories (a pooled model's), else they are
    the categories seen on at least :data:`MIN_CATEGORY_LEADS` of these leads.
    ``custom=False`` leaves the custom attributes out (a pooled model shares
    no custom columns across tenants).
    """
    leads = leads.sort("lead_id")
    lead_ids = leads["lead_id"].to_list()
    n = len(lead_ids)
    columns: dict[str, list[float]] = {}
    specs: list[FeatureSpec] = []
    evidence_rows: list[tuple[str, str, str]] = []
    vocab: dict[str, tuple[str, ...]] = dict(vocabulary or {})
    profile = config.profile

    seniority = [s or "missing" for s in leads["title_seniority"].to_list()]
    fixed = {"title_seniority": SENIORITIES, "company_size": COMPANY_SIZES}
    for column in ("title_seniority", "company_size", "industry", "source"):
        values = seniority if column == "title_seniority" else leads[column].to_list()
        if column not in vocab:
            vocab[column] = fixed.get(column) or _levels(values)
        for level in vocab[column]:
            name = f"{column}={_code(level)}"
            specs.append(FeatureSpec(name, "fit", column, level))
            columns[name] = [1.0 if v == level else 0.0 for v in values]

    icp = {
        "industry": (leads["industry"].to_list(), profile.industries),
        "company_size": (leads["company_size"].to_list(), profile.company_sizes),
        "title_seniority": (seniority, profile.seniorities),
        "country": (leads["country"].to_list(), profile.countries),
    }
    for column, (values, wanted) in icp.items():
        if not wanted:
            continue
        name = f"icp.{column}"
        specs.append(FeatureSpec(name, "fit", column))
        columns[name] = [1.0 if v in wanted else 0.0 for v in values]

    specs.append(FeatureSpec("business_email", "fit", "email"))
    columns["business_email"] = [0.0 if f else 1.0 for f in leads["is_free_mail"].to_list()]

    # custom attributes
    decisions: list[CustomAttributeDecision] = []
    if custom:
        parsed = parse_custom_attributes(leads["custom_attributes"].to_list())
        decisions = profile_custom_attributes(parsed, config)
        for decision in decisions:
            attr = decision.attribute
            values = [row.get(attr) for row in parsed]
            if decision.decision == "numeric":
                numbers = [_as_number(v) if v is not None else None for v in values]
                known = sorted(x for x in numbers if x is not None)
                median = known[len(known) // 2] if known else 0.0
                name = f"custom.{attr}"
                specs.append(FeatureSpec(name, "fit", f"custom.{attr}"))
                columns[name] = [median if x is None else x for x in numbers]
            elif decision.decision == "categorical":
                key = f"custom.{attr}"
                if key not in vocab:
                    minimum = 1 if attr in config.custom_attributes.include else MIN_CATEGORY_LEADS
                    vocab[key] = _levels(values, minimum)
                for level in vocab[key]:
                    name = f"custom.{attr}={_code(level)}"
                    specs.append(FeatureSpec(name, "fit", f"custom.{attr}", level))
                    columns[name] = [1.0 if v == level else 0.0 for v in values]

    # engagement
    as_of = leads.select(
        "lead_id",
        as_of_date=pl.Series(
            [_to_date(v) for v in leads["features_as_of"].to_list()], dtype=pl.Date
        ),
    )
    decayed = decayed_touches(touches, as_of, config)
    by_type = {t: dict.fromkeys(lead_ids, 0.0) for t in TOUCH_TYPES}
    for lead_id, touch_type, value, ref in decayed.iter_rows():
        by_type[touch_type][lead_id] = float(value)
        if ref is not None:
            evidence_rows.append((lead_id, f"engagement.{touch_type}", ref))
    for touch_type in TOUCH_TYPES:
        name = f"engagement.{touch_type}"
        specs.append(FeatureSpec(name, "engagement", touch_type))
        # log1p: the tenth visit says less than the first
        columns[name] = [math.log1p(by_type[touch_type][lead]) for lead in lead_ids]

    known_fit = [
        sum(v is not None and v != "missing" for v in (s, ind, size, country, src))
        for s, ind, size, country, src in zip(
            seniority,
            leads["industry"].to_list(),
            leads["company_size"].to_list(),
            leads["country"].to_list(),
            leads["source"].to_list(),
            strict=True,
        )
    ]
    touched = {t: by_type[t] for t in TOUCH_TYPES}
    known_touch = [sum(touched[t][lead] > 0 for t in TOUCH_TYPES) for lead in lead_ids]
    meta = leads.select(
        [
            c
            for c in (
                "lead_id",
                "created_at",
                "label",
                "outcome",
                "status",
                "rules_score_without_status",
            )
            if c in leads.columns
        ]
    ).with_columns(
        known_signals=pl.Series([a + b for a, b in zip(known_fit, known_touch, strict=True)])
    )
    matrix = pl.DataFrame(
        {name: pl.Series(name, columns[name], dtype=pl.Float64) for name in (s.name for s in specs)}
    )
    if matrix.width == 0:
        matrix = pl.DataFrame({"_": [0.0] * n}).drop("_")
    evidence = pl.DataFrame(
        evidence_rows,
        schema={"lead_id": pl.String, "feature": pl.String, "evidence_ref": pl.String},
        orient="row",
    ).unique(["lead_id", "feature"], keep="last", maintain_order=True)
    return FeatureFrame(
        leads=meta,
        matrix=matrix,
        specs=specs,
        evidence=evidence,
        custom=decisions,
        vocabulary=vocab,
    )
