"""The data-quality gates as Dagster asset checks, per tenant partition.

Thin wiring around ``quality.gates`` and ``quality.freshness``: each check step
reads what it checks once, evaluates, keeps every result in ``ops.check_results``
and reports it to Dagster. The blocking ones (ERROR when failed) stop the
tenant's downstream assets in that run, so a bad batch never reaches the raw
copies, dbt or the serving tables; the published scores stay as they were.

- ``source_table_checks``: every connector table: its GX suite and the refused
  share of this run's batch (``expectations``), its row count against the last
  passing one (``row_count_change``), both blocking.
- ``source_freshness_checks``: every connector table's ``freshness`` (WARN).
- ``mart_checks``: every mart a serving table publishes, GX suite, blocking: the
  publish of that mart waits for it.
- ``staging_integrity_checks``: a few staging links (child key in parent), WARN.

One step per group, so a tenant's run pays a few steps, not one per table.
"""

import functools
from collections.abc import Iterable, Iterator
from typing import Protocol

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from assets.resources import BizosSettings
from connectors.sources import SOURCES
from core.contracts.serving_tables import SERVING_TABLES
from core.settings import Settings
from core.tenancy import check_tenant_id
from quality.freshness import FRESHNESS, freshness_record, tenant_freshness
from quality.gates import (
    EXPECTATIONS,
    LINKS,
    ROW_COUNT,
    STAGING_SCHEMA,
    mart_expectations,
    mart_expectations_by_tenant,
    referential_integrity,
    row_count_change,
    source_expectations,
)
from quality.load_log import batch_counts
from quality.reads import lake_column_chunks, lake_row_count, read_lake_columns
from quality.results import ERROR, CheckRecord, record_results, results_of_run
from warehouse.marts import mart_row_counts, read_mart, read_mart_tenants
from warehouse.relations import read_relation

SOURCE_TABLES = {
    AssetKey([spec.source, spec.name]): spec
    for source in SOURCES.values()
    for spec in source.tables.values()
}


def check_result(records: list[CheckRecord]) -> AssetCheckResult:
    """The Dagster view of one check's kept results: one per tenant of the run (a
    single-run backfill covers several); it passes when every tenant's passed."""
    failed = [r for r in records if not r.passed]
    worst = failed or records
    first = records[0]
    return AssetCheckResult(
        asset_key=AssetKey.from_user_string(first.asset_key),
        check_name=first.check_name,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR
        if any(r.severity == ERROR for r in worst)
        else AssetCheckSeverity.WARN,
        metadata={
            "tenant_id": ", ".join(r.tenant_id for r in records),
            "observed_value": "; ".join(
                (f"{r.tenant_id}: " if len(records) > 1 else "") + (r.observed_value or "")
                for r in records
            ),
            "details": MetadataValue.json(
                dict(first.details)
                if len(records) == 1
                else {r.tenant_id: dict(r.details) for r in records}
            ),
        },
    )


def _report(settings: Settings, records: Iterable[CheckRecord]) -> Iterator[AssetCheckResult]:
    """Keep every result, then report one per check."""
    kept = list(records)
    record_results(settings, kept)
    yield from _per_check(kept)


def _per_check(records: Iterable[CheckRecord]) -> Iterator[AssetCheckResult]:
    """One Dagster result per check of ``records`` (of one tenant or several)."""
    by_check: dict[tuple[str, str], list[CheckRecord]] = {}
    for record in records:
        by_check.setdefault((record.asset_key, record.check_name), []).append(record)
    for results in by_check.values():
        yield check_result(results)


TENANT_TAG = "bizos/tenant"
"""The tenant of a run that has no partition (the freshness job's)."""


def run_tenants(context: AssetCheckExecutionContext) -> list[str]:
    """The run's tenants: its partition, the partitions of a single-run backfill, or
    the ``bizos/tenant`` tag of a run without partitions."""
    op_context = context.op_execution_context
    if op_context.has_partition_key:
        return [check_tenant_id(op_context.partition_key)]
    if op_context.has_partition_key_range:
        return [check_tenant_id(k) for k in op_context.partition_keys]
    tagged = context.run.tags.get(TENANT_TAG)
    if not tagged:
        raise Failure(
            description=f"no tenant: run this check in a tenant partition or tag the run "
            f"{TENANT_TAG}=<tenant>",
            allow_retries=False,
        )
    return [check_tenant_id(tagged)]


class _Evaluate(Protocol):
    def __call__(
        self, settings: Settings, tenant_id: str, *, run_id: str, selected: set[AssetCheckKey]
    ) -> list[CheckRecord]: ...


def _evaluate(
    context: AssetCheckExecutionContext, bizos: BizosSettings, evaluate: _Evaluate
) -> Iterator[AssetCheckResult]:
    settings = bizos.get()
    selected = set(context.selected_asset_check_keys)
    records = [
        record
        for tenant_id in run_tenants(context)
        for record in evaluate(settings, tenant_id, run_id=context.run.run_id, selected=selected)
    ]
    yield from _report(settings, records)


def source_table_records(
    settings: Settings, tenant_id: str, *, run_id: str, selected: set[AssetCheckKey]
) -> list[CheckRecord]:
    records: list[CheckRecord] = []
    batches = batch_counts(settings, tenant_id=tenant_id, run_id=run_id)
    for key, spec in SOURCE_TABLES.items():
        wanted = {c for c in (EXPECTATIONS, ROW_COUNT) if AssetCheckKey(key, c) in selected}
        if not wanted:
            continue
        name = key.to_user_string()
        if EXPECTATIONS in wanted:
            record = source_expectations(
                spec,
                lake_column_chunks(settings, spec, tenant_id, settings.quality_check_chunk_rows),
                tenant_id=tenant_id,
                batch=batches.get((spec.source, spec.name)),
                asset_key=name,
                run_id=run_id,
                keys=functools.partial(read_lake_columns, settings, spec, tenant_id),
            )
            records.append(record)
            rows = int(record.details["rows_checked"])
        else:
            rows = lake_row_count(settings, spec, tenant_id)
        if ROW_COUNT in wanted:
            records.append(
                row_count_change(
                    settings, asset_key=name, tenant_id=tenant_id, rows=rows, run_id=run_id
                )
            )
    return records


@multi_asset_check(
    name="source_table_checks",
    specs=[
        spec
        for key in SOURCE_TABLES
        for spec in (
            AssetCheckSpec(
                EXPECTATIONS,
                asset=key,
                blocking=True,
                description="GX suite from the TableSpec (types, required not null, key "
                "unique, provider enums and ranges) over the tenant's landed rows; fails "
                "too when landing refused more than 20% of this run's batch",
            ),
            AssetCheckSpec(
                ROW_COUNT,
                asset=key,
                blocking=True,
                description="the tenant's row count against its last passing count: a "
                "fall of more than BIZOS_QUALITY_MAX_ROW_DROP (default 50%) fails",
            ),
        )
    ],
    can_subset=True,
)
def source_table_checks(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> Iterator[AssetCheckResult]:
    yield from _evaluate(context, bizos, source_table_records)


def freshness_records(
    settings: Settings, tenant_id: str, *, run_id: str, selected: set[AssetCheckKey]
) -> list[CheckRecord]:
    return [
        freshness_record(item, tenant_id=tenant_id, run_id=run_id)
        for item in tenant_freshness(settings, tenant_id)
        if AssetCheckKey(AssetKey([item.source, item.table]), FRESHNESS) in selected
    ]


@multi_asset_check(
    name="source_freshness_checks",
    specs=[
        AssetCheckSpec(
            FRESHNESS,
            asset=key,
            description="last successful load (ops.load_log) within the source's window "
            "(Stripe and CRM 2 h, others 26 h; BIZOS_FRESHNESS_HOURS); WARN, never blocks",
        )
        for key in SOURCE_TABLES
    ],
    can_subset=True,
)
def source_freshness_checks(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> Iterator[AssetCheckResult]:
    """In a tenant's run, after its loads; on its own (job ``check_freshness``, tenant
    in the ``bizos/tenant`` tag), when nothing loads, which is when staleness starts."""
    yield from _evaluate(context, bizos, freshness_records)


def mart_records(
    settings: Settings, tenant_id: str, *, run_id: str, selected: set[AssetCheckKey]
) -> list[CheckRecord]:
    return [
        mart_expectations(
            contract,
            read_mart(settings, contract.mart, tenant_id=tenant_id),
            tenant_id=tenant_id,
            run_id=run_id,
        )
        for contract in SERVING_TABLES.values()
        if AssetCheckKey(AssetKey(contract.mart), EXPECTATIONS) in selected
    ]


BATCH_CHECK_ROWS = 250_000
"""At most this many rows of a mart go into one GX validation of a batch (a tenant
with more goes alone): bounds the pandas frame GX needs."""

MART_VERDICTS_TAG = "bizos/mart-verdicts"
"""On a tenant's publish run: the run id under which its batch already checked the
marts (``ops.check_results``); the run's ``mart_checks`` reports those verdicts."""


def tenant_groups(
    tenant_ids: list[str], rows: dict[str, int], *, max_rows: int
) -> Iterator[list[str]]:
    """Consecutive groups of ``tenant_ids`` holding at most ``max_rows`` rows each (a
    tenant with more is a group of its own)."""
    group: list[str] = []
    held = 0
    for tenant in tenant_ids:
        n = rows.get(tenant, 0)
        if group and held + n > max_rows:
            yield group
            group, held = [], 0
        group.append(tenant)
        held += n
    if group:
        yield group


def batch_mart_records(
    settings: Settings, tenant_ids: list[str], *, run_id: str, max_rows: int = BATCH_CHECK_ROWS
) -> list[CheckRecord]:
    """Every serving mart's suite over a batch's tenants, a few GX validations per
    mart instead of one per tenant (``quality.gates.mart_expectations_by_tenant``);
    one record per tenant and mart, as ``mart_records`` would give."""
    ids = [check_tenant_id(t) for t in tenant_ids]
    records: list[CheckRecord] = []
    for contract in SERVING_TABLES.values():
        counts = mart_row_counts(settings, contract.mart, tenant_ids=ids)
        for group in tenant_groups(ids, counts, max_rows=max_rows):
            rows = read_mart_tenants(settings, contract, tenant_ids=group)
            records.extend(
                mart_expectations_by_tenant(contract, rows, tenant_ids=group, run_id=run_id)
            )
    return records


def batch_verdicts(
    settings: Settings, verdicts_run: str, tenant_ids: list[str], selected: set[AssetCheckKey]
) -> list[CheckRecord] | None:
    """The kept verdicts of ``verdicts_run`` for these tenants and selected mart checks,
    or None when any is missing (then the run checks for itself)."""
    wanted = {
        (contract.mart, tenant)
        for contract in SERVING_TABLES.values()
        if AssetCheckKey(AssetKey(contract.mart), EXPECTATIONS) in selected
        for tenant in tenant_ids
    }
    found = {
        (r.asset_key, r.tenant_id): r
        for tenant in tenant_ids
        for r in results_of_run(settings, run_id=verdicts_run, tenant_id=tenant)
        if r.check_name == EXPECTATIONS and (r.asset_key, r.tenant_id) in wanted
    }
    return [found[k] for k in sorted(wanted)] if wanted <= found.keys() else None


@multi_asset_check(
    name="mart_checks",
    specs=[
        AssetCheckSpec(
            EXPECTATIONS,
            asset=AssetKey(contract.mart),
            blocking=True,
            description=f"GX suite from the `{contract.name}` serving contract (types, "
            "required not null, key unique, ranges, allowed values) over the tenant's rows: "
            f"serving_{contract.name} publishes only when it passes",
        )
        for contract in SERVING_TABLES.values()
    ],
    can_subset=True,
)
def mart_checks(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> Iterator[AssetCheckResult]:
    """In a batch's publish runs, the verdicts the batch already reached for all its
    tenants at once (``MART_VERDICTS_TAG``); otherwise the tenant's own check."""
    verdicts_run = context.run.tags.get(MART_VERDICTS_TAG)
    if verdicts_run:
        settings = bizos.get()
        kept = batch_verdicts(
            settings, verdicts_run, run_tenants(context), set(context.selected_asset_check_keys)
        )
        if kept is not None:
            yield from _per_check(kept)  # kept by the batch already
            return
        context.log.warning(f"no verdicts of {verdicts_run} for this run: checking here")
    yield from _evaluate(context, bizos, mart_records)


def integrity_records(
    settings: Settings, tenant_id: str, *, run_id: str, selected: set[AssetCheckKey]
) -> list[CheckRecord]:
    records = []
    for link in LINKS:
        if AssetCheckKey(AssetKey(link.child), link.check_name) not in selected:
            continue
        child = read_relation(
            settings, STAGING_SCHEMA, link.child, [link.column], tenant_id=tenant_id
        )
        # The parent is read only when there is a key to look up in it.
        parent = (
            read_relation(
                settings, STAGING_SCHEMA, link.parent, [link.parent_column], tenant_id=tenant_id
            )
            if child.num_rows
            else None
        )
        records.append(
            referential_integrity(link, child, parent, tenant_id=tenant_id, run_id=run_id)
        )
    return records


@multi_asset_check(
    name="staging_integrity_checks",
    specs=[
        AssetCheckSpec(
            link.check_name,
            asset=AssetKey(link.child),
            additional_deps=[AssetKey(link.parent)],
            description=f"every {link.child}.{link.column} names a row of {link.parent}",
        )
        for link in LINKS
    ],
    can_subset=True,
)
def staging_integrity_checks(
    context: AssetCheckExecutionContext, bizos: BizosSettings
) -> Iterator[AssetCheckResult]:
    yield from _evaluate(context, bizos, integrity_records)


FRESHNESS_CHECK_KEYS = [AssetCheckKey(key, FRESHNESS) for key in SOURCE_TABLES]

quality_checks = [
    source_table_checks,
    source_freshness_checks,
    mart_checks,
    staging_integrity_checks,
]
