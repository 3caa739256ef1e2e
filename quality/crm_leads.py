"""The quality suite for CRM leads: what a lead row must satisfy to be loaded.

The suite is written once, as Great Expectations expectation configurations
(``quality.expectations.Rule``). It is applied twice, each time where it fits:

- on the load path, to every parsed batch, as vectorised polars expressions
  translated from these same expectations (``row_rule_failures``): GX's pandas
  validation is row-indexed Python and would cost more than the parse on a
  multi-GB export;
- as the asset check, by GX itself, over the landed partition read in batches
  (``validate_partition``), so the check is the suite's own verdict and memory
  stays at one batch.

A test holds the two to the same verdict, row for row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from core.contracts.crm_export import LEAD_STATUSES, NOT_NULL_COLUMNS
from lake.files import LakePath, parquet_file
from quality.expectations import Rule, SuiteOutcome, describe, run_suite

if TYPE_CHECKING:
    import pandas as pd

# Deliberately plain: one @, no spaces, a dot in the domain. Full RFC 5322 is
# not the point; catching "n/a", "bob at acme" and empty cells is.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"

SUITE_NAME = "crm_leads"
CHECK_BATCH_ROWS = 200_000


CRM_LEADS_RULES: tuple[Rule, ...] = (
    *(Rule("expect_column_values_to_not_be_null", {"column": c}) for c in NOT_NULL_COLUMNS),
    Rule("expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL_PATTERN}),
    Rule(
        "expect_column_values_to_be_in_set",
        {"column": "status", "value_set": list(LEAD_STATUSES)},
    ),
)


def validate_crm_leads(frame: pd.DataFrame) -> SuiteOutcome:
    """Validate lead rows; ``status`` is compared lower-cased, as staging does."""
    checked = frame.copy()
    if "status" in checked:
        checked["status"] = checked["status"].str.strip().str.lower()
    return run_suite(SUITE_NAME, CRM_LEADS_RULES, checked)


def _failure_expr(config: Rule) -> pl.Expr:
    """True where a row fails the rule (nulls pass all but not-null, as in GX)."""
    kwargs = config.kwargs
    column = pl.col(kwargs["column"])
    if config.type == "expect_column_values_to_not_be_null":
        return column.is_null()
    if config.type == "expect_column_values_to_match_regex":
        return column.is_not_null() & ~column.str.contains(kwargs["regex"])
    if config.type == "expect_column_values_to_be_in_set":
        return column.is_not_null() & ~column.is_in(list(kwargs["value_set"]))
    # A new kind of expectation must be translated here, or the load would
    # silently let through rows the asset check then fails.
    raise NotImplementedError(f"no vectorised form for {config.type}")


def row_rule_failures(frame: pl.DataFrame) -> pl.Series:
    """Per row, the failed expectations (``column: expectation`` joined by ``; ``) or null."""
    checked = frame
    if "status" in frame.columns:
        checked = frame.with_columns(pl.col("status").str.strip_chars().str.to_lowercase())
    reasons = [
        pl.when(_failure_expr(rule)).then(pl.lit(describe(rule))) for rule in CRM_LEADS_RULES
    ]
    joined = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    return checked.select(
        pl.when(joined == "").then(None).otherwise(joined).alias("failures")
    ).to_series()


def validate_partition(path: LakePath) -> SuiteOutcome:
    """Run the GX suite over a landed partition, one batch at a time, and sum up."""
    parquet = parquet_file(path)
    total = SuiteOutcome(suite_name=SUITE_NAME, success=True)
    counts: dict[str, int] = {}
    for batch in parquet.iter_batches(batch_size=CHECK_BATCH_ROWS):
        outcome = validate_crm_leads(batch.to_pandas())
        total.success = total.success and outcome.success
        for item in outcome.expectations:
            name = str(item["expectation"])
            counts[name] = counts.get(name, 0) + int(item["unexpected_count"])
    total.expectations = [
        {"expectation": name, "success": n == 0, "unexpected_count": n}
        for name, n in counts.items()
    ]
    return total
