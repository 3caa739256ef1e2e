"""The asset graph is reviewed like code: a change to keys, lineage, checks, jobs,
schedules or sensors shows up in this snapshot's diff.

Regenerate after an intended change with ``BIZOS_UPDATE_SNAPSHOTS=1 make test``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dagster import MultiPartitionsDefinition, PartitionsDefinition

from connectors.sources import SOURCES
from pipelines.definitions import build_definitions

# SP-API's staging models come with the sourcing models (issue 10, its other half):
# until they are in the project, the raw copies are the last step checked for it.
STAGING_DIR = Path(__file__).resolve().parent.parent / "dbt" / "models" / "staging"
STAGING_PENDING = set() if (STAGING_DIR / "sp_api").is_dir() else {"sp_api"}

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def partitions_name(partitions: PartitionsDefinition | None) -> str | None:
    """``tenants``, or ``date x tenants`` for the event tables' (tenant, day) partitions."""
    if isinstance(partitions, MultiPartitionsDefinition):
        return " x ".join(
            getattr(d.partitions_def, "name", None) or d.name for d in partitions.partitions_defs
        )
    return getattr(partitions, "name", None)


def graph_of(settings) -> dict:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": partitions_name(node.partitions_def),
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
        }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": {s.name: s.cron_schedule for s in repo.schedule_defs},
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def test_asset_graph_matches_snapshot(settings):
    current = graph_of(settings)
    if os.environ.get("BIZOS_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}: run with BIZOS_UPDATE_SNAPSHOTS=1"
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_dbt_model_is_downstream_of_the_lake_and_feeds_serving(settings):
    assets = graph_of(settings)["assets"]
    assert assets["stg_crm_export__leads"]["deps"] == ["raw/crm_export__leads"]
    assert assets["raw/crm_export__leads"]["deps"] == ["crm_export/leads"]
    # every lake table of every source reaches dbt through its raw copy, which
    # runs after the table's ingest
    for source, definition in SOURCES.items():
        for table in definition.tables:
            raw = f"raw/{source}__{table}"
            assert assets[raw]["partitions"] == "tenants", raw
            assert assets[raw]["deps"] == [f"{source}/{table}"], raw
            if source in STAGING_PENDING:
                continue
            assert assets[f"stg_{source}__{table}"]["deps"] == [raw]
    assert assets["serving_lead_scores"]["deps"] == ["mart_lead_scores"]
    # No day partitions: a start date would cap a source's history.
    assert all(a["partitions"] == "tenants" for a in assets.values())


def test_materialize_all_loads_every_source_table(settings):
    defs = build_definitions(settings)
    per_tenant = defs.resolve_job_def("materialize_all")
    tenant_keys = {k.to_user_string() for k in per_tenant.asset_layer.executable_asset_keys}
    assert {"stripe/charges", "stripe/customers", "ga4/report_rows"} <= tenant_keys
    assert [j.name for j in defs.jobs if not j.name.startswith("__")] == [
        "materialize_all",
        "refresh_suppliers",
        "check_freshness",
        *(f"{s}_load" for s in [*SOURCES, "crm_export"]),  # pipelines/schedules.py
        "batch_ingest",  # pipelines/batch.py: bizos run --batch-size N
        "batch_lead_model",
        "batch_publish",
        "daily_batch_refresh_job",  # pipelines/daily_batch.py: BIZOS_REFRESH_BATCH_SIZE
    ]


def test_a_tenant_run_starts_dbt_twice_and_copies_raw_tables_once(settings):
    """Each dbt step of a run is one dbt start under the warehouse writer lock, so the
    step count sets how long tenants wait for each other. Two is the floor: the lead
    model is Python between the feature models and the lead marts. A new asset that
    reaches the raw copies through more steps than the others splits them (and dbt)
    again (Dagster colours multi-assets by steps crossed): this test says so."""
    from dagster._core.execution.api import create_execution_plan

    job = build_definitions(settings).resolve_job_def("materialize_all")
    steps = [s.key for s in create_execution_plan(job).get_steps_to_execute_in_topo_order()]
    assert [s for s in steps if s.startswith("bizos_dbt_models")] == [
        "bizos_dbt_models",
        "bizos_dbt_models_2",
    ], steps
    assert [s for s in steps if s.startswith("raw_tables")] == ["raw_tables"], steps
