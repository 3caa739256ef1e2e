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

from collections.abc import Iterable, Iterator

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
from connectors.state import read_load_log
from core.contracts.serving_tables import SERVING_TABLES
from core.settings import Settings
from core.tenancy import check_tenant_id
from quality.freshness import FRESHNESS, freshness_record, tenant_freshness
from quality.gates import (
    EXPECTATIONS,
    LINKS,
    ROW_COUNT,
    mart_expectations,
    referential_integrity,
    row_count_change,
    source_expectations,
)
from quality.reads import read_lake_columns
from quality.results import ERROR, CheckRecord, record_results
from warehouse.marts import read_mart

SOURCE_TABLES = {
    AssetKey([spec.source, spec.name]): spec
    for source in SOURCES.values()
    for spec in source.tables.values()
}


def check_result(record: CheckRecord) -> AssetCheckResult:
    """The Dagster view of a kept result."""
    return AssetCheckResult(
        asset_key=AssetKey.from_user_string(record.asset_key),
        check_name=record.check_name,
        passed=record.passed,
        severity=AssetCheckSeverity.ERROR if record.severity == ERROR else AssetCheckSeverity.WARN,
        metadata={
            "tenant_id": record.tenant_id,
            "observed_value": record.observed_value or "",
            "details": MetadataValue.json(dict(record.details)),
        },
    )


def _report(settings: Settings, records: Iterable[CheckRecord]) -> Iterator[AssetCheckResult]:
    kept = list(records)
    record_results(settings, kept)
    for record in kept:
        yield check_result(record)


TENANT_TAG = "bizos/tenant"
"""The tenant of a run that has no partition (the freshness job's)."""


def _tenant(context: AssetCheckExecutionContext) -> str:
    op_context = context.op_execution_context
    if op_context.has_partition_key:
        return check_tenant_id(op_context.partition_key)
    tagged = context.run.tags.get(TENANT_TAG)
    if not tagged:
        raise Failure(
            description=f"no tenant: run this check in a tenant partition or tag the run "
            f"{TENANT_TAG}=<tenant>",
            allow_retries=False,
        )
    return check_tenant_id(tagged)


def _selected(context: AssetCheckExecutionContext) -> set[AssetCheckKey]:
    return set(context.selected_asset_check_keys)


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
    settings = bizos.get()
    tenant_id = _tenant(context)
    run_id = context.run.run_id
    selected = _selected(context)
    records: list[CheckRecord] = []
    batches = {
        (row.source, row.table_name): {
            "rows_in": row.rows_in,
            "rows_quarantined": row.rows_quarantined,
        }
        for row in read_load_log(settings, tenant_id)
        if row.run_id == run_id
    }
    for key, spec in SOURCE_TABLES.items():
        wanted = {c for c in (EXPECTATIONS, ROW_COUNT) if AssetCheckKey(key, c) in selected}
        if not wanted:
            continue
        rows = read_lake_columns(settings, spec, tenant_id)
        name = key.to_user_string()
        if EXPECTATIONS in wanted:
            records.append(
                source_expectations(
                    spec,
                    rows,
                    tenant_id=tenant_id,
                    batch=batches.get((spec.source, spec.name)),
                    asset_key=name,
                    run_id=run_id,
                )
            )
        if ROW_COUNT in wanted:
            records.append(
                row_count_change(
                    settings, asset_key=name, tenant_id=tenant_id, rows=rows.num_rows, run_id=run_id
                )
            )
    yield from _report(settings, records)


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
    settings = bizos.get()
    tenant_id = _tenant(context)
    selected = _selected(context)
    records = [
        freshness_record(item, tenant_id=tenant_id, run_id=context.run.run_id)
        for item in tenant_freshness(settings, tenant_id)
        if AssetCheckKey(AssetKey([item.source, item.table]), FRESHNESS) in selected
    ]
    yield from _report(settings, records)


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
    settings = bizos.get()
    tenant_id = _tenant(context)
    selected = _selected(context)
    records = [
        mart_expectations(
            contract,
            read_mart(settings, contract.mart, tenant_id=tenant_id),
            tenant_id=tenant_id,
            run_id=context.run.run_id,
        )
        for contract in SERVING_TABLES.values()
        if AssetCheckKey(AssetKey(contract.mart), EXPECTATIONS) in selected
    ]
    yield from _report(settings, records)


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
    settings = bizos.get()
    tenant_id = _tenant(context)
    selected = _selected(context)
    records = [
        referential_integrity(settings, link, tenant_id=tenant_id, run_id=context.run.run_id)
        for link in LINKS
        if AssetCheckKey(AssetKey(link.child), link.check_name) in selected
    ]
    yield from _report(settings, records)


FRESHNESS_CHECK_KEYS = [AssetCheckKey(key, FRESHNESS) for key in SOURCE_TABLES]

quality_checks = [
    source_table_checks,
    source_freshness_checks,
    mart_checks,
    staging_integrity_checks,
]
