"""The data-quality gates as plain functions: each evaluates one check for one
tenant and returns the result as it is kept (``quality.results.CheckRecord``).
The Dagster wiring (assets/quality_checks.py) only reads their verdicts out.

- ``source_expectations``: a raw table's GX suite over the tenant's landed rows,
  and the share of this run's batch that landing refused (wrong types, a null
  key: those rows are quarantined, so a batch that is mostly refused shows here).
- ``row_count_change``: the tenant's row count against the last passing result of
  the same check; a fall of more than ``quality_max_row_drop`` fails.
- ``mart_expectations``: a serving mart's GX suite over the tenant's rows.
- ``referential_integrity``: child keys of one staging table that its parent lacks.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.landing import TableSpec
from core.contracts.table import TableContract
from core.settings import Settings
from quality.expectations import Rule, SuiteOutcome, merge_outcomes, parameter, run_suite
from quality.frames import non_null_columns, to_pandas
from quality.mart_suites import mart_rules
from quality.results import ERROR, WARN, CheckRecord, last_passing_value
from quality.source_suites import source_rules, suite_name

EXPECTATIONS = "expectations"
ROW_COUNT = "row_count_change"
INTEGRITY = "referential_integrity"

MAX_QUARANTINED_SHARE = 0.2
"""A batch of which landing refused more than this share is a broken extract, not a
few bad records: it fails the table's gate even though nothing bad landed."""


def _validate(name: str, rules: Sequence[Rule], table: pa.Table) -> SuiteOutcome:
    """GX over ``table``; an empty table meets every expectation (no GX run: most
    tenants use a few of the sources, and each empty suite would cost a validation)."""
    if table.num_rows == 0:
        return SuiteOutcome(suite_name=name, success=True)
    return run_suite(name, rules, to_pandas(table))


def _failed(outcome: SuiteOutcome) -> list[dict[str, Any]]:
    return [e for e in outcome.expectations if not e["success"]]


KEY_RULES = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
"""The expectations over all of a table's rows at once: a key must be unique across
chunks, not within each."""


def validate_source_chunks(
    spec: TableSpec,
    chunks: Iterable[pa.Table],
    *,
    tenant_id: str,
    keys: Callable[[Sequence[str]], pa.Table],
) -> tuple[SuiteOutcome, int, int]:
    """The GX suite of ``spec`` over a tenant's rows given as ``chunks``, how many rows
    that was, and how many expectations the suite had.

    Why in chunks: GX validates a pandas frame, several times the Arrow bytes, so a
    tenant's whole table in one frame made an ingest worker's memory grow with the
    tenant (about 2 GB at 1 M records, bench/RESULTS.md). One chunk (most tables) is
    one validation, as before. With more, each chunk is validated without the key's
    uniqueness, which is then validated once over ``keys(columns)``, the key columns
    of every row: a duplicate in two chunks is still one."""
    name = suite_name(spec)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        rules = source_rules(spec, tenant_id=tenant_id, typed=set())
        return SuiteOutcome(suite_name=name, success=True), 0, len(rules)
    second = next(chunks, None)
    if second is None:
        rules = source_rules(spec, tenant_id=tenant_id, typed=non_null_columns(first))
        return _validate(name, rules, first), first.num_rows, len(rules)
    parts: list[tuple[int, SuiteOutcome]] = []
    key_rules: tuple[Rule, ...] = ()
    offset = 0
    for chunk in itertools.chain((first, second), chunks):
        rules = source_rules(spec, tenant_id=tenant_id, typed=non_null_columns(chunk))
        key_rules = tuple(r for r in rules if r.type in KEY_RULES)
        row_rules = [r for r in rules if r.type not in KEY_RULES]
        parts.append((offset, _validate(f"{name}#rows", row_rules, chunk)))
        offset += chunk.num_rows
    if key_rules:
        columns = [
            c
            for rule in key_rules
            for c in rule.kwargs.get("column_list", [rule.kwargs.get("column")])
        ]
        parts.append((0, _validate(f"{name}#keys", key_rules, keys(columns))))
    merged = merge_outcomes(name, parts)
    return merged, offset, len(merged.expectations)


def source_expectations(
    spec: TableSpec,
    chunks: Iterable[pa.Table],
    *,
    tenant_id: str,
    batch: Mapping[str, int] | None,
    asset_key: str,
    run_id: str | None,
    keys: Callable[[Sequence[str]], pa.Table],
) -> CheckRecord:
    """The GX suite of ``spec`` over the tenant's rows, given as ``chunks`` with
    ``keys`` reading their key columns whole (``validate_source_chunks``), and the
    refused share of ``batch`` (``rows_in``/``rows_quarantined`` of this run's load,
    if it loaded)."""
    outcome, checked, expectations = validate_source_chunks(
        spec, chunks, tenant_id=tenant_id, keys=keys
    )
    rows_in = int(batch.get("rows_in", 0)) if batch else 0
    refused = int(batch.get("rows_quarantined", 0)) if batch else 0
    share = refused / rows_in if rows_in else 0.0
    passed = outcome.success and share <= MAX_QUARANTINED_SHARE
    failed = _failed(outcome)
    return CheckRecord(
        check_name=EXPECTATIONS,
        asset_key=asset_key,
        tenant_id=tenant_id,
        passed=passed,
        blocking=True,
        severity=ERROR,
        observed_value=f"{len(failed)} of {expectations} expectations failed; "
        f"{refused} of {rows_in} rows of the batch quarantined",
        details={
            "rows_checked": checked,
            "batch_rows_in": rows_in,
            "batch_rows_quarantined": refused,
            "max_quarantined_share": MAX_QUARANTINED_SHARE,
            "failed_expectations": failed,
            "expectations": expectations,
        },
        run_id=run_id,
    )


def row_count_change(
    settings: Settings, *, asset_key: str, tenant_id: str, rows: int, run_id: str | None
) -> CheckRecord:
    """``rows`` against the last passing count of this table and tenant."""
    previous_text = last_passing_value(
        settings, check_name=ROW_COUNT, asset_key=asset_key, tenant_id=tenant_id
    )
    previous = int(previous_text) if previous_text and previous_text.isdigit() else None
    limit = settings.quality_max_row_drop
    drop = (previous - rows) / previous if previous else 0.0
    passed = drop <= limit
    return CheckRecord(
        check_name=ROW_COUNT,
        asset_key=asset_key,
        tenant_id=tenant_id,
        passed=passed,
        blocking=True,
        severity=ERROR,
        observed_value=str(rows),
        details={
            "rows": rows,
            "previous_passing_rows": previous,
            "drop": round(drop, 4),
            "max_drop": limit,
        },
        run_id=run_id,
    )


def mart_expectations(
    contract: TableContract, rows: pa.Table, *, tenant_id: str, run_id: str | None
) -> CheckRecord:
    """The GX suite of the mart behind ``contract`` over the tenant's ``rows``."""
    (record,) = mart_expectations_by_tenant(contract, rows, tenant_ids=[tenant_id], run_id=run_id)
    return record


def failed_by_tenant(
    outcome: SuiteOutcome, rows: pa.Table, tenant_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The failed expectations of one validation over several tenants' ``rows``, per
    tenant, as if each had been validated alone: a failing row counts against its own
    tenant (with its count and examples); an expectation that fails for the table as a
    whole (a missing column, a column of the wrong type), or any row of a tenant
    outside ``tenant_ids``, fails every tenant."""
    tenant_of = rows.column("tenant_id").to_pylist() if "tenant_id" in rows.column_names else []
    failing_rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, reasons in sorted(outcome.row_failures.items()):
        for reason in reasons:
            failing_rows[str(tenant_of[index])][reason].append(index)
    row_reasons = {r for reasons in outcome.row_failures.values() for r in reasons}
    foreign = set(tenant_of) - set(tenant_ids)
    whole = [e for e in _failed(outcome) if foreign or e["expectation"] not in row_reasons]
    whole_reasons = {e["expectation"] for e in whole}
    failed: dict[str, list[dict[str, Any]]] = {}
    for tenant in tenant_ids:
        own = list(whole)
        for reason, indexes in failing_rows.get(tenant, {}).items():
            if reason in whole_reasons:
                continue
            entry: dict[str, Any] = {
                "expectation": reason,
                "success": False,
                "unexpected_count": len(indexes),
            }
            column = reason.split(": ", 1)[0] if ": " in reason else None
            if column in rows.column_names:
                values = rows.column(column).take(indexes[:5]).to_pylist()
                entry["examples"] = [str(v) for v in values]
            own.append(entry)
        failed[tenant] = own
    return failed


def rows_per_tenant(rows: pa.Table) -> Counter[str]:
    if "tenant_id" not in rows.column_names:
        return Counter()
    return Counter(rows.column("tenant_id").to_pylist())


def mart_expectations_by_tenant(
    contract: TableContract, rows: pa.Table, *, tenant_ids: Sequence[str], run_id: str | None
) -> list[CheckRecord]:
    """The GX suite of the mart behind ``contract`` over several tenants' ``rows`` in
    one validation, with one record per tenant, as if each had been checked alone
    (``failed_by_tenant``).

    Why: GX's cost is per expectation evaluated (tens of milliseconds each, whatever
    the rows), so checking a batch's tenants one by one cost about 2.4 s a tenant
    for the seven serving marts (bench/RESULTS.md)."""
    ids = list(dict.fromkeys(tenant_ids))
    rules = mart_rules(
        contract,
        tenant_ids=ids,
        typed=non_null_columns(rows),
        columns=set(rows.column_names),
    )
    failed = failed_by_tenant(_validate(f"mart.{contract.name}", rules, rows), rows, ids)
    counts = rows_per_tenant(rows)
    return [
        CheckRecord(
            check_name=EXPECTATIONS,
            asset_key=contract.mart,
            tenant_id=tenant,
            passed=not failed[tenant],
            blocking=True,
            severity=ERROR,
            observed_value=f"{len(failed[tenant])} of {len(rules)} expectations failed "
            f"on {counts[tenant]} rows",
            details={
                "rows_checked": counts[tenant],
                "failed_expectations": failed[tenant],
                **({"checked_with_tenants": len(ids)} if len(ids) > 1 else {}),
            },
            run_id=run_id,
        )
        for tenant in ids
    ]


@dataclass(frozen=True)
class Link:
    """A staging table's column that must name a row of its parent staging table."""

    child: str
    column: str
    parent: str
    parent_column: str

    @property
    def check_name(self) -> str:
        return f"{INTEGRITY}__{self.column}"


LINKS: tuple[Link, ...] = (
    Link("stg_stripe__charges", "customer_id", "stg_stripe__customers", "customer_id"),
    Link("stg_stripe__invoices", "customer_id", "stg_stripe__customers", "customer_id"),
    Link("stg_saleor__order_lines", "order_id", "stg_saleor__orders", "order_id"),
    Link("stg_crm_api__activities", "lead_id", "stg_crm_api__leads", "lead_id"),
)
"""The links worth a check: each is a join a mart makes, where an orphan drops out
of it silently (a charge of an unknown customer is revenue nobody is credited with)."""

STAGING_SCHEMA = "staging"


def referential_integrity(
    link: Link, child: pa.Table, parent: pa.Table | None, *, tenant_id: str, run_id: str | None
) -> CheckRecord:
    """Child keys of ``link`` (nulls aside) that its parent does not hold, per GX's
    ``expect_column_values_to_be_in_set`` with the parent's keys as the set.
    ``parent`` may be None when the child has no keys (nothing to look up)."""
    child = child.filter(pc.is_valid(child.column(link.column)))
    parent_keys: list[Any] = []
    if parent is not None:
        parent_keys = sorted({v for v in parent.column(link.parent_column).to_pylist() if v})
    rule = Rule(
        "expect_column_values_to_be_in_set",
        {"column": link.column, "value_set": parameter("parent_keys")},
        params={"parent_keys": parent_keys},
    )
    outcome = _validate(f"integrity.{link.child}.{link.column}", [rule], child)
    failed = _failed(outcome)
    orphans = sum(int(e["unexpected_count"]) for e in failed)
    return CheckRecord(
        check_name=link.check_name,
        asset_key=link.child,
        tenant_id=tenant_id,
        passed=outcome.success,
        blocking=False,
        severity=WARN,
        observed_value=f"{orphans} of {child.num_rows} {link.column} not in {link.parent}",
        details={
            "parent": link.parent,
            "orphans": orphans,
            "examples": [x for e in failed for x in e.get("examples", [])][:5],
        },
        run_id=run_id,
    )
