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
from functools import cache
from typing import TYPE_CHECKING, Any

# GX would phone home and draw progress bars; neither belongs in a pipeline log.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Rule:
    """One expectation as GX configures it: its type and keyword arguments.

    ``params`` gives the values of ``{"$PARAMETER": name}`` placeholders in
    ``kwargs`` (GX's suite parameters), passed at each validation. They are not part
    of the rule's identity: a suite whose rules differ only in them (a tenant's id)
    is built once per process, not again for every tenant. Rebuilding a suite (its
    datasource, asset and every expectation) cost about 2 s of CPU a tenant for the
    source checks."""

    type: str
    kwargs: Mapping[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def parameter(name: str) -> dict[str, str]:
    """The placeholder of suite parameter ``name`` in a rule's kwargs."""
    return {"$PARAMETER": name}


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


_prepared: dict[str, tuple[tuple[Rule, ...], Any, Any]] = {}
"""Per suite name: its rules, GX batch definition and suite, made once per process."""


@cache
def _context() -> Any:
    """One ephemeral GX context per process: making one costs about a second, and a
    run evaluates a suite per table."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _suite_for(name: str, rules: Sequence[Rule]) -> tuple[Any, Any]:
    """The batch definition and suite of ``name``, rebuilt only when its rules changed
    (a referential-integrity suite's value set moves with its parent table)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    frozen = tuple(rules)
    hit = _prepared.get(name)
    if hit is not None and hit[0] == frozen:
        return hit[1], hit[2]
    context = _context()
    if hit is not None:
        context.data_sources.delete(name)
        context.suites.delete(name)
    batch_definition = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for rule in frozen:
        config = ExpectationConfiguration(type=rule.type, kwargs=dict(rule.kwargs))
        suite.add_expectation(config.to_domain_obj())
    _prepared[name] = (frozen, batch_definition, suite)
    return batch_definition, suite


def _forget(batch: Any) -> None:
    """Let go of the frame a validation read.

    The datasource of each suite is kept for the process (``_suite_for``), and its
    execution engine keeps the last batch it validated, frame and all: one frame per
    suite stayed alive, so a worker held every table it had checked (about 600 MB
    after a 1 M-record tenant's source checks, bench/RESULTS.md)."""
    manager = batch.data.execution_engine.batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def run_suite(name: str, rules: Sequence[Rule], frame: pd.DataFrame) -> SuiteOutcome:
    batch_definition, suite = _suite_for(name, rules)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    parameters = {k: v for rule in rules for k, v in rule.params.items()}
    try:
        result = batch.validate(
            suite, result_format="COMPLETE", expectation_parameters=parameters or None
        )
    finally:
        _forget(batch)

    outcome = SuiteOutcome(suite_name=name, success=bool(result.success))
    failures: dict[Any, list[str]] = defaultdict(list)
    # Results do not come back in the suite's order: name each from its own config.
    for item in result.results:
        reason = describe(item.expectation_config)
        unexpected = item.result.get("unexpected_index_list") or []
        entry: dict[str, Any] = {
            "expectation": reason,
            "success": bool(item.success),
            "unexpected_count": int(item.result.get("unexpected_count") or 0),
        }
        observed = item.result.get("observed_value")
        if observed is not None:
            entry["observed_value"] = str(observed)
        if not item.success and item.result.get("partial_unexpected_list"):
            entry["examples"] = [str(v) for v in item.result["partial_unexpected_list"][:5]]
        outcome.expectations.append(entry)
        for index in unexpected:
            failures[index].append(reason)
    outcome.row_failures = dict(failures)
    return outcome


def merge_outcomes(name: str, parts: Sequence[tuple[int, SuiteOutcome]]) -> SuiteOutcome:
    """One outcome from suites run over parts of one table, as if run over it whole:
    each part given with the table row its index 0 stands for. An expectation
    succeeds where it succeeded in every part that has it; its unexpected rows add
    up; examples come from the first parts that failed it."""
    merged: dict[str, dict[str, Any]] = {}
    failures: dict[Any, list[str]] = defaultdict(list)
    for offset, outcome in parts:
        for entry in outcome.expectations:
            seen = merged.get(entry["expectation"])
            if seen is None:
                merged[entry["expectation"]] = dict(entry)
                continue
            seen["success"] = seen["success"] and entry["success"]
            seen["unexpected_count"] += entry["unexpected_count"]
            if "observed_value" in entry:
                seen["observed_value"] = entry["observed_value"]
            examples = [*seen.get("examples", []), *entry.get("examples", [])][:5]
            if examples:
                seen["examples"] = examples
        for index, reasons in outcome.row_failures.items():
            failures[offset + index if isinstance(index, int) else index].extend(reasons)
    return SuiteOutcome(
        suite_name=name,
        success=all(outcome.success for _, outcome in parts),
        expectations=list(merged.values()),
        row_failures=dict(failures),
    )
