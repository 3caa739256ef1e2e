"""The lead-scores mart contract as the serving layer enforces it.

``docs/contracts.md`` names the columns of ``analytics.mart_lead_scores``. Publishing
checks a table against them *before* anything is written, so a bad dbt run fails
loudly at the door instead of half-replacing a tenant or breaking every API page
later (reads parse ``reasons`` strictly because it was validated here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from core.scoring import GRADES
from core.tenancy import InvalidTenantId, check_tenant_id

# Column order is the order of the serving tables; both stores build their DDL and
# their COPY/INSERT lists from this one list so they cannot drift apart.
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
LEAD_SCORE_COLUMNS: tuple[str, ...] = tuple(LEAD_SCORE_SCHEMA.names)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in LEAD_SCORE_SCHEMA if not f.nullable)
# What the serving tables add to the mart columns.
SERVED_COLUMNS: tuple[str, ...] = (*LEAD_SCORE_COLUMNS, "published_at")

# `factor:+points` joined by `|`; factor names may hold anything but the two separators.
_REASON = r"[^:|]+:[+-]?\d+"
_REASONS_RE = re.compile(rf"^(?:{_REASON}(?:\|{_REASON})*)?$")


class ContractError(ValueError):
    """The table handed to publish does not satisfy the lead-scores contract."""


@dataclass(frozen=True)
class ScoreReason:
    """One factor of a score and the points it contributed."""

    factor: str
    points: int


def _check_tenant(tenant_id: str) -> str:
    """The tenant-id rule, reported as a contract violation."""
    try:
        return check_tenant_id(tenant_id)
    except InvalidTenantId as exc:
        raise ContractError(str(exc)) from None


def conform_lead_scores(tenant_id: str, table: pa.Table | pa.RecordBatchReader) -> pa.Table:
    """Return ``table`` cast to ``LEAD_SCORE_SCHEMA`` after checking every contract rule.

    Accepts what the warehouses hand back: DuckDB's ``.arrow()`` gives a
    RecordBatchReader, ``pa.Table.from_pylist`` over Postgres rows gives int64 scores
    and, for zero rows, a table with no columns at all. Extra columns are dropped:
    serving exposes a fixed shape, not whatever the mart grew this week.
    """
    _check_tenant(tenant_id)
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    if table.num_rows == 0 and table.num_columns == 0:
        return LEAD_SCORE_SCHEMA.empty_table()

    missing = [c for c in LEAD_SCORE_COLUMNS if c not in table.column_names]
    if missing:
        raise ContractError(f"lead scores are missing columns: {', '.join(missing)}")

    columns = []
    for field in LEAD_SCORE_SCHEMA:
        column = table.column(field.name)
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            # A naive timestamp from the warehouse is UTC by the lake contract.
            column = pc.assume_timezone(column, "UTC")
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ContractError(
                f"column {field.name!r} cannot be read as {field.type}: {exc}"
            ) from exc
    conformed = pa.Table.from_arrays(columns, schema=LEAD_SCORE_SCHEMA.with_metadata(None))
    _check_rows(tenant_id, conformed)
    return conformed


def _check_rows(tenant_id: str, table: pa.Table) -> None:
    """Row rules that the serving tables would otherwise enforce only halfway through a swap."""
    if table.num_rows == 0:
        return
    for name in REQUIRED_COLUMNS:
        if table.column(name).null_count:
            raise ContractError(f"column {name!r} has nulls but is required")

    # Never publish one tenant's rows under another tenant's name.
    other = pc.unique(pc.filter(table["tenant_id"], pc.not_equal(table["tenant_id"], tenant_id)))
    if len(other):
        raise ContractError(
            f"publishing tenant {tenant_id!r} but the table holds rows of "
            f"{sorted(other.to_pylist())[:5]}"
        )

    lead_ids = table["lead_id"]
    if len(pc.unique(lead_ids)) != table.num_rows:
        counts = pc.value_counts(lead_ids)
        dupes = [v["values"] for v in counts.to_pylist() if v["counts"] > 1][:5]
        raise ContractError(f"lead_id is not unique within the tenant, e.g. {dupes}")

    score = table["score"]
    if pc.any(pc.or_(pc.less(score, 0), pc.greater(score, 100))).as_py():
        raise ContractError("score must be between 0 and 100")

    grade = table["grade"]
    bad_grades = pc.unique(pc.filter(grade, pc.invert(pc.is_in(grade, pa.array(GRADES)))))
    if len(bad_grades):
        raise ContractError(f"grade must be one of {GRADES}, got {bad_grades.to_pylist()[:5]}")

    reasons = pc.drop_null(table["reasons"])
    well_formed = pc.match_substring_regex(reasons, _REASONS_RE.pattern)
    malformed = pc.filter(reasons, pc.invert(well_formed))
    if len(malformed):
        raise ContractError(
            f"reasons must look like 'factor:+points|...', got {malformed.to_pylist()[:3]}"
        )


def parse_reasons(text: str | None) -> list[ScoreReason]:
    """Split ``title_seniority:+25|company_size:+20`` into factors, keeping their order."""
    if not text:
        return []
    reasons = []
    for part in text.split("|"):
        factor, _, points = part.rpartition(":")
        reasons.append(ScoreReason(factor=factor, points=int(points)))
    return reasons
