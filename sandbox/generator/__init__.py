"""Deterministic, realistic multi-tenant data for every source, in the providers' shapes.

``generate_sources(out_dir, tenants=[...], scale=1.0, seed=7)`` writes::

    out_dir/
      ground_truth.json                  counts, id checksums, lead conversions and why
      credentials.json                   per tenant per source: the key the sandbox accepts
      <tenant>/<source>/<table>.parquet  id, created|updated, seq, tenant_id, payload (+extras)

Same arguments, same bytes. The sandbox server (``sandbox.server``) serves these
files over HTTP in each provider's documented API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sandbox.crm_export import generate_crm_export
from sandbox.generator import ai_usage, cms_forms, crm, ga4, saleor, sp_api, stripe
from sandbox.generator.core import AS_OF, Progress, Writers, id_checksum
from sandbox.generator.credentials import tenant_credentials
from sandbox.generator.truth import GroundTruth, LeadTruth, TableTruth, TenantTruth
from sandbox.generator.world import (
    BASE_COUNTS,
    DERIVED,
    SOURCES,
    TABLES,
    build_world,
    resolve_counts,
)

__all__ = [
    "AS_OF",
    "BASE_COUNTS",
    "DERIVED",
    "SOURCES",
    "TABLES",
    "GroundTruth",
    "LeadTruth",
    "TableTruth",
    "TenantTruth",
    "generate_sources",
    "id_checksum",
    "resolve_counts",
    "table_path",
]

CREDENTIALS_FILE = "credentials.json"
# The platform's tenant-id rule (assets.partitions), restated so the
# sandbox does not import Dagster.
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Order matters: the CRM settles each lead's activity before the others read the world.
GENERATORS = (
    ("crm_api", crm),
    ("cms_forms", cms_forms),
    ("ga4", ga4),
    ("stripe", stripe),
    ("saleor", saleor),
    ("ai_usage", ai_usage),
    ("sp_api", sp_api),
)


def table_path(out_dir: Path, tenant_id: str, source: str, table: str) -> Path:
    return out_dir / tenant_id / source / f"{table}.parquet"


def generate_sources(
    out_dir: Path,
    *,
    tenants: Sequence[str],
    scale: float = 1.0,
    seed: int = 7,
    counts: dict[str, int] | None = None,
    with_defects: bool = False,
    with_crm_exports: bool = False,
    with_price_lists: bool = False,
    inbox_dir: Path | None = None,
    as_of: datetime = AS_OF,
    progress: Progress | None = None,
) -> GroundTruth:
    """Write every source's tables for every tenant, the ground truth and the credentials.

    ``scale`` multiplies the base row counts (at 1.0 a tenant has 200 leads,
    2,000 charges, ...; see ``BASE_COUNTS``); ``counts`` overrides single tables,
    e.g. ``{"stripe.charges": 1_000_000}`` (derived tables such as invoices follow
    their parents). ``with_defects`` breaks a documented few records per table
    (a required field missing, an unknown new field); the default data is clean.
    ``with_crm_exports`` also drops each tenant's CRM CSV export (the same leads)
    into ``<inbox_dir>/<tenant>/crm/``; ``with_price_lists`` its supplier price
    lists, quoting items of its SP-API catalog, into ``<inbox_dir>/<tenant>/price_lists/``.
    """
    tenants = list(tenants)
    if not tenants:
        raise ValueError("no tenants given")
    for tenant_id in tenants:
        if not TENANT_ID.match(tenant_id):
            raise ValueError(
                f"invalid tenant id {tenant_id!r}: use lower-case letters, digits, '-' or '_'"
            )
    if len(set(tenants)) != len(tenants):
        raise ValueError(f"duplicate tenant ids in {tenants}")
    if (with_crm_exports or with_price_lists) and inbox_dir is None:
        raise ValueError(
            "with_crm_exports and with_price_lists need inbox_dir (the platform's BIZOS_HOME/inbox)"
        )
    sized = resolve_counts(scale, counts)
    out_dir.mkdir(parents=True, exist_ok=True)

    truths: dict[str, TenantTruth] = {}
    credentials: dict[str, object] = {}
    for tenant_id in tenants:
        world = build_world(seed, tenant_id, as_of=as_of, counts=sized)
        tables: dict[str, TableTruth] = {}
        facts: dict[str, object] = {}
        for source, module in GENERATORS:
            writers = Writers(
                out_dir,
                tenant_id,
                source,
                with_defects=with_defects,
                defects=module.DEFECTS if hasattr(module, "DEFECTS") else {},
                progress=progress,
            )
            module.generate(world, writers)
            for table, stats in writers.output.tables.items():
                s = stats.to_json()
                tables[f"{source}.{table}"] = TableTruth(
                    count=s["count"],
                    id_checksum=s["id_checksum"],
                    min_ts=s["min_ts"],
                    max_ts=s["max_ts"],
                    defects=s.get("defects", {}),
                )
                if progress:
                    progress(tenant_id, f"{source}.{table}", stats.count)
            facts.update(writers.output.facts)
        creds = tenant_credentials(seed, tenant_id, SOURCES)
        credentials[tenant_id] = creds
        truths[tenant_id] = TenantTruth(
            tenant_id=tenant_id,
            profile={
                "name": world.profile.name,
                "currency": world.profile.currency,
                "timezone": world.profile.timezone,
                "site": world.profile.site,
                "ga4_property_id": creds["ga4"]["property_id"],
            },
            tables=tables,
            leads={
                lead.id: LeadTruth(
                    converts=lead.base.converts,
                    propensity=round(lead.base.propensity, 4),
                    status=lead.base.status,
                    factors=lead.base.factors,
                    engagement=round(lead.engagement, 4),
                    activities=lead.activity_count,
                )
                for lead in world.leads
            },
            facts=facts,
        )
        if with_crm_exports and inbox_dir is not None:
            generate_crm_export(
                inbox_dir, tenant_id, leads=sized["crm_api.leads"], seed=seed, as_of=as_of
            )
        if with_price_lists and inbox_dir is not None:
            sp_api.write_price_lists(inbox_dir, out_dir, tenant_id, seed=seed)

    truth = GroundTruth(
        seed=seed,
        scale=scale,
        as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        with_defects=with_defects,
        tenants=truths,
    )
    truth.save(out_dir)
    tmp = out_dir / (CREDENTIALS_FILE + ".tmp")
    tmp.write_text(json.dumps(credentials, indent=1, sort_keys=True) + "\n")
    tmp.replace(out_dir / CREDENTIALS_FILE)
    return truth
