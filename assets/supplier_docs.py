"""Dagster wiring for supplier documents: one multi-asset landing both lake tables,
and the sensor that runs a tenant when documents arrive.

``supplier_docs/documents`` and ``supplier_docs/document_fields`` are read
together from one walk of the tenant's ``inbox/<tenant>/suppliers/`` folder, so
they are one step, partitioned by tenant. The logic is in ``supplier_docs``;
the contract of both tables is core/contracts/supplier_docs.py. Both tables
materialize for every tenant, with or without documents, so the raw copies and
dbt downstream never skip (see assets/sources.py).
"""

import json
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    multi_asset,
    sensor,
)

import credentials
from assets.partitions import tenants
from assets.resources import BizosSettings
from core.contracts.supplier_docs import DOCUMENTS_TABLE, FIELDS_TABLE, SOURCE
from core.tenancy import check_tenant_id
from exports.inbox import scan_inbox
from opsdb.tenants import disabled_tenants
from supplier_docs.inbox import inbox_fingerprint
from supplier_docs.landing import read_supplier_documents
from supplier_docs.llm import tenant_extractor

DOCUMENTS_KEY = AssetKey([SOURCE, DOCUMENTS_TABLE])
FIELDS_KEY = AssetKey([SOURCE, FIELDS_TABLE])


@multi_asset(
    name="supplier_docs_read",
    specs=[
        AssetSpec(
            DOCUMENTS_KEY,
            group_name="integrations",
            kinds={"parquet"},
            description="Supplier documents from the tenant's inbox "
            "(`suppliers/<supplier>/`): one row per document, deduplicated by the "
            "sha256 of its bytes, classified. Unreadable files go to the quarantine.",
        ),
        AssetSpec(
            FIELDS_KEY,
            group_name="integrations",
            kinds={"parquet"},
            description="Fields extracted from each supplier document (names, numbers, "
            "dates, amounts), each with its confidence, page and location.",
        ),
    ],
    partitions_def=tenants,
)
def supplier_docs_read(
    context: AssetExecutionContext, bizos: BizosSettings
) -> Iterator[MaterializeResult]:
    settings = bizos.get()
    tenant_id = check_tenant_id(context.partition_key)
    try:
        extractor = tenant_extractor(settings, tenant_id, actor=f"dagster:{context.run_id}")
    except credentials.CredentialError as exc:
        # The tenant asked for its LLM and its key cannot be read: say so
        # instead of silently reading its documents another way.
        raise Failure(description=str(exc), allow_retries=False) from exc
    try:
        load = read_supplier_documents(
            settings, tenant_id, run_id=context.run_id, extractor=extractor
        )
    finally:
        if extractor is not None:
            extractor.close()
    context.log.info(
        f"tenant {tenant_id}: {len(load.read)} supplier document(s) read, "
        f"{load.already_read} already read, {len(load.quarantined)} quarantined, "
        f"{load.fields_landed} field(s) found"
        + (" (LLM extractor)" if extractor is not None else "")
    )
    for skipped in load.skipped:
        context.log.warning(f"supplier document skipped: {skipped['path']}: {skipped['reason']}")
    for refused in load.quarantined:
        context.log.warning(
            f"supplier document quarantined: {refused['path']}: {refused['reason']}"
        )
    yield MaterializeResult(
        asset_key=DOCUMENTS_KEY,
        metadata={
            "documents_read": MetadataValue.json(load.read),
            "already_read": load.already_read,
            "quarantined": MetadataValue.json(load.quarantined),
            "skipped": MetadataValue.json(load.skipped),
            "llm": extractor is not None,
            "llm_fallbacks": load.llm_fallbacks,
            "documents_total": load.documents_total,
            "lake_path": MetadataValue.path(str(load.documents_path)),
            "quarantine_path": MetadataValue.path(str(load.quarantine_path)),
        },
    )
    yield MaterializeResult(
        asset_key=FIELDS_KEY,
        metadata={
            "fields_landed": load.fields_landed,
            "fields_total": load.fields_total,
            "lake_path": MetadataValue.path(str(load.fields_path)),
        },
    )


@sensor(
    job_name="materialize_all",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
)
def supplier_document_arrivals(
    context: SensorEvaluationContext, bizos: BizosSettings
) -> SensorResult:
    """New or changed documents under a tenant's ``suppliers/``: run that tenant.

    The cursor keeps each tenant's inbox fingerprint; a run is requested when it
    changes, keyed by it, so a tick never requests the same run twice. Tenants
    not yet known are left to the ``tenant_inboxes`` sensor, which adds them and
    runs them once.
    """
    settings = bizos.get()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(tenants.name or "tenants"))
    requests = []
    current: dict[str, str] = {}
    disabled = disabled_tenants(settings)
    for tenant_id in scan_inbox(settings).tenants:
        if tenant_id not in known or tenant_id in disabled:
            continue
        fingerprint = inbox_fingerprint(settings, tenant_id)
        if fingerprint:
            current[tenant_id] = fingerprint
        if fingerprint and seen.get(tenant_id) != fingerprint:
            requests.append(
                RunRequest(
                    partition_key=tenant_id,
                    run_key=f"supplier-docs:{tenant_id}:{fingerprint}",
                    tags={"bizos/trigger": "supplier_documents"},
                )
            )
    return SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))
