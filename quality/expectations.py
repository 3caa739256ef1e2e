"""Run a Great Expectations suite over a DataFrame and say which rows fail why.

GX is used in its ephemeral mode: suites live in code (reviewed like code), and
nothing is written to a GX project directory.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# GX would phone home and draw progress bars; neither belongs in a pipeline log.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402


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


def run_suite(
    name: str,
    build_expectations: Callable[[], list[gx.expectations.Expectation]],
    frame: pd.DataFrame,
) -> SuiteOutcome:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in build_expectations():
        suite.add_expectation(expectation)
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
