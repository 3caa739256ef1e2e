"""The quality suite for CRM leads: what a lead row must satisfy to be loaded."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from core.contracts.crm_export import LEAD_STATUSES, NOT_NULL_COLUMNS
from quality.expectations import SuiteOutcome, run_suite

# Deliberately plain: one @, no spaces, a dot in the domain. Full RFC 5322 is
# not the point; catching "n/a", "bob at acme" and empty cells is.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"

SUITE_NAME = "crm_leads"


def crm_leads_expectations() -> list[gx.expectations.Expectation]:
    checks: list[gx.expectations.Expectation] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=c) for c in NOT_NULL_COLUMNS
    ]
    checks.append(
        gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_PATTERN)
    )
    checks.append(
        gx.expectations.ExpectColumnValuesToBeInSet(column="status", value_set=list(LEAD_STATUSES))
    )
    return checks


def validate_crm_leads(frame: pd.DataFrame) -> SuiteOutcome:
    """Validate lead rows; ``status`` is compared lower-cased, as staging does."""
    checked = frame.copy()
    if "status" in checked:
        checked["status"] = checked["status"].str.strip().str.lower()
    return run_suite(SUITE_NAME, crm_leads_expectations, checked)
