"""Every table the serving layer publishes, by name: the one list the stores,
the Dagster publish assets and the migration test iterate."""

from __future__ import annotations

from core.contracts.lead_model_cards import LEAD_MODEL_CARDS
from core.contracts.lead_score_history import LEAD_SCORE_HISTORY
from core.contracts.lead_scores import LEAD_SCORES
from core.contracts.revenue_traffic import AI_USAGE_COST, REVENUE_MONTHLY, TRAFFIC_BY_SOURCE
from core.contracts.sourcing_opportunities import SOURCING_OPPORTUNITIES
from core.contracts.supplier_risk import SUPPLIER_RISK
from core.contracts.table import TableContract

SERVING_TABLES: dict[str, TableContract] = {
    c.name: c
    for c in (
        LEAD_SCORES,
        LEAD_SCORE_HISTORY,
        LEAD_MODEL_CARDS,
        SUPPLIER_RISK,
        SOURCING_OPPORTUNITIES,
        REVENUE_MONTHLY,
        TRAFFIC_BY_SOURCE,
        AI_USAGE_COST,
    )
}


def contract_for_mart(mart: str) -> TableContract | None:
    """The serving contract fed by dbt model ``mart``, if any."""
    return next((c for c in SERVING_TABLES.values() if c.mart == mart), None)
