"""Run a Great Expectations suite over a DataFrame and say which rows fail why.

GX is used in its ephemeral mode: suites live in code (reviewed like code), and
nothing is written to a GX project directory.

A suite is written as :class:`Rule` values, GX's own expectation configurations
(type and kwargs) as plain data, and turned into GX objects only when it is run:
importing GX costs about 6 s, which every process that loads the Dagster
definitions (each `bizos` command, the code server, each test worker) would pay
while only the asset check needs it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# GX would phone home and draw progress bars; neither belongs in a pipeline log.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Rule:
    """One expectation as GX configures it: its type and keyword arguments."""

    type: str
    kwargs: Mapping[str, Any]


@dataclass
class SuiteOutcome:
    """Per-expectation results plus, per failing row index, why it failed."""

    suite_name: str
    success: bool
    expectations: list[dict[str, Any]] = field(default_factory=list)
    row_failures: dict[Any, list[str]] = field(default_factory=dict)

    @property
    def failed_rows(self) -> int:
        return len(self.row_failures)


def describe(config: Any) -> str:
    """A short human reason, e.g. ``email: expect_column_values_to_match_regex``."""
    column = config.kwargs.get("column")
    return f"{column}: {config.type}" if column else str(config.type)


def run_suite(name: str, rules: Sequence[Rule], frame: pd.DataFrame) -> SuiteOutcome:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for rule in rules:
        config = ExpectationConfiguration(type=rule.type, kwargs=dict(rule.kwargs))
        suite.add_expectation(config.to_domain_obj())
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format="COMPLETE")

    outcome = SuiteOutcome(suite_name=name, success=bool(result.success))
    failures: dict[Any, list[str]] = defaultdict(list)
    # Results do not come back in the suite's order: name each from its own config.
    for item in result.results:
        reason = describe(item.expectation_config)
        unexpected = item.result.get("unexpected_index_list") or []
        outcome.expectations.append(
            {
                "expectation": reason,
                "success": bool(item.success),
                "unexpected_count": int(item.result.get("unexpected_count") or 0),
            }
        )
        for index in unexpected:
            failures[index].append(reason)
    outcome.row_failures = dict(failures)
    return outcome
