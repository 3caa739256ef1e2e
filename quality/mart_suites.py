"""The suites of the serving marts, derived from each TableContract.

The contract gives the types, the required columns and the key; the values a
column may take and the ranges of scores come from the same constants the
contract's row rules use, so the suite and the publish step cannot disagree.
A mart added to ``SERVING_TABLES`` gets its types, not-null and key checks with
no change here; its ranges are added below when it has some.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.contracts.lead_model_cards import MODEL_KINDS
from core.contracts.supplier_risk import REVIEW_STATUSES, SUPPLIER_RISK_COMPONENTS, TIERS
from core.contracts.table import TableContract
from quality.expectations import Rule, parameter
from quality.frames import type_family

GRADES = ["A", "B", "C", "D"]
SCORE_STATUSES = ["scored", "unknown"]


def _between(column: str, low: float, high: float) -> Rule:
    return Rule(
        "expect_column_values_to_be_between",
        {"column": column, "min_value": low, "max_value": high},
    )


def _in_set(column: str, values: list[str] | tuple[str, ...]) -> Rule:
    return Rule("expect_column_values_to_be_in_set", {"column": column, "value_set": list(values)})


def _lead_score_rules() -> list[Rule]:
    return [
        _between("score", 0, 100),
        _in_set("grade", GRADES),
        _in_set("score_model", MODEL_KINDS),
    ]


MART_RULES: dict[str, Callable[[], list[Rule]]] = {
    "lead_scores": _lead_score_rules,
    "lead_score_history": _lead_score_rules,
    "lead_model_cards": lambda: [
        _in_set("score_model", MODEL_KINDS),
        _between("auc", 0, 1),
        _between("base_score", 0, 100),
    ],
    "supplier_risk": lambda: [
        _between("score", 0, 100),
        *(_between(c, 0, 100) for c in SUPPLIER_RISK_COMPONENTS),
        _in_set("grade", TIERS),
        _in_set("review_status", REVIEW_STATUSES),
    ],
}
"""Per serving table: ranges and allowed values beyond what the schema says."""


def mart_rules(
    contract: TableContract,
    *,
    tenant_ids: Sequence[str],
    typed: set[str],
    columns: set[str],
) -> tuple[Rule, ...]:
    """The expectations of one mart for these tenants' rows (``typed``: columns with a
    value; ``columns``: what the mart has, so a rule on a column it lacks is not made
    and the missing column fails the column-set expectation instead). With several
    tenants the key is unique within each tenant: ``tenant_id`` joins it."""
    rules: list[Rule] = [
        Rule(
            "expect_table_columns_to_match_set",
            {"column_set": list(contract.columns), "exact_match": False},
        ),
        Rule(
            "expect_column_values_to_be_in_set",
            {"column": "tenant_id", "value_set": parameter("tenant_ids")},
            params={"tenant_ids": sorted(tenant_ids)},
        ),
    ]
    for field in contract.schema:
        family = type_family(field.type)
        if family is not None and field.name in typed:
            rules.append(
                Rule(
                    "expect_column_values_to_be_in_type_list",
                    {"column": field.name, "type_list": family},
                )
            )
    for column in contract.required:
        if column in columns:
            rules.append(Rule("expect_column_values_to_not_be_null", {"column": column}))
    key = (
        list(contract.primary_key)
        if len(tenant_ids) > 1
        else [c for c in contract.primary_key if c != "tenant_id"]
    )
    if len(key) == 1:
        rules.append(Rule("expect_column_values_to_be_unique", {"column": key[0]}))
    elif key:
        rules.append(Rule("expect_compound_columns_to_be_unique", {"column_list": key}))
    extra = MART_RULES.get(contract.name)
    for rule in extra() if extra else []:
        if rule.kwargs.get("column") in columns:
            rules.append(rule)
    return tuple(rules)
