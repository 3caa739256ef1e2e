"""The lead model card serving contract: ``analytics.mart_lead_model_cards``.

One row per tenant: which model scores its leads and why, its labels, its held-out
metrics against the rules on the same period, its thresholds, and three JSON
arrays (features with weights and scaling, calibration by decile, custom-attribute
decisions). The JSON is checked at publish, so the API parses it strictly.
"""

from __future__ import annotations

import json

import pyarrow as pa

from core.contracts.table import ContractError, TableContract

MODEL_KINDS: tuple[str, ...] = ("tenant_logreg", "tenant_boosted", "pooled_logreg", "rules_v0")

_JSON_COLUMNS: dict[str, frozenset[str]] = {
    "features_json": frozenset({"feature", "kind", "coefficient", "mean", "scale"}),
    "calibration_json": frozenset({"scorer", "decile", "leads", "mean_predicted", "observed_rate"}),
    "custom_attributes_json": frozenset({"attribute", "decision", "reason"}),
}

LEAD_MODEL_CARD_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("score_model", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("config_version", pa.string()),
        pa.field("trained_at", pa.timestamp("us", tz="UTC")),
        pa.field("reason", pa.string()),
        pa.field("intercept", pa.float64()),
        pa.field("base_score", pa.int32()),
        pa.field("labels_positive", pa.int32()),
        pa.field("labels_negative", pa.int32()),
        pa.field("labels_open", pa.int32()),
        pa.field("labels_used", pa.int32()),
        pa.field("train_rows", pa.int32()),
        pa.field("holdout_rows", pa.int32()),
        pa.field("holdout_positives", pa.int32()),
        pa.field("auc", pa.float64()),
        pa.field("log_loss", pa.float64()),
        pa.field("calibration_error", pa.float64()),
        pa.field("rules_auc", pa.float64()),
        pa.field("rules_log_loss", pa.float64()),
        pa.field("rules_calibration_error", pa.float64()),
        pa.field("grade_a", pa.int32()),
        pa.field("grade_b", pa.int32()),
        pa.field("grade_c", pa.int32()),
        pa.field("mql_threshold", pa.int32()),
        *(pa.field(name, pa.string(), nullable=False) for name in _JSON_COLUMNS),
    ]
)


def parse_card_json(column: str, text: str) -> list[dict[str, object]]:
    """One of the card's JSON arrays, each item with its keys; ContractError otherwise."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{column} is not JSON: {exc}") from None
    wanted = _JSON_COLUMNS[column]
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and wanted <= set(i) for i in items
    ):
        raise ContractError(f"{column} must be a list of objects with {sorted(wanted)}")
    return items


def _cards_well_formed(table: pa.Table) -> None:
    if table.num_rows > 1:
        raise ContractError(f"a tenant has one model card, got {table.num_rows} rows")
    kinds = set(table["score_model"].to_pylist())
    if not kinds <= set(MODEL_KINDS):
        raise ContractError(f"score_model must be one of {MODEL_KINDS}, got {sorted(kinds)}")
    for column in _JSON_COLUMNS:
        for text in table[column].to_pylist():
            parse_card_json(column, text)


LEAD_MODEL_CARDS = TableContract(
    name="lead_model_cards",
    mart="mart_lead_model_cards",
    schema=LEAD_MODEL_CARD_SCHEMA,
    primary_key=("tenant_id",),
    order_by=("model_version",),
    row_rules=(_cards_well_formed,),
    description="Each tenant's lead model card: model, features, metrics against the rules",
)
