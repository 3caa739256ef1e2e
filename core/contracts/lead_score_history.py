"""The lead-score history serving contract: ``analytics.mart_lead_score_history``.

A row per lead per ``scored_at`` (each run that rescored the tenant), so the API can
show how a lead's score moved. Served newest first per lead; ``reasons`` is the
short text form (``code:+points|...``), checked like the current scores'.
"""

from __future__ import annotations

import pyarrow as pa

from core.contracts.lead_scores import (
    LEAD_SCORE_MART_SCHEMA,
    grade_is_a_band,
    reasons_well_formed,
    score_in_range,
    unknown_means_no_score,
)
from core.contracts.table import TableContract

_HISTORY_COLUMNS = (
    "tenant_id",
    "lead_id",
    "scored_at",
    "score",
    "score_status",
    "grade",
    "probability",
    "fit_score",
    "engagement_score",
    "is_mql",
    "score_model",
    "model_version",
    "config_version",
    "reasons",
)

LEAD_SCORE_HISTORY_SCHEMA = pa.schema([LEAD_SCORE_MART_SCHEMA.field(c) for c in _HISTORY_COLUMNS])
"""The history mart's columns, typed as in the scores mart (one definition of each)."""

LEAD_SCORE_HISTORY = TableContract(
    name="lead_score_history",
    mart="mart_lead_score_history",
    schema=LEAD_SCORE_HISTORY_SCHEMA,
    primary_key=("tenant_id", "lead_id", "scored_at"),
    order_by=("lead_id", "-scored_at"),
    row_rules=(score_in_range, grade_is_a_band, reasons_well_formed, unknown_means_no_score),
    description="Every scoring of a tenant's leads, for each lead's score history",
)
