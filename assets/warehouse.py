"""The dbt project as Dagster assets, one tenant partition at a time.

Asset keys are model names and groups are dbt folders, both read from the
manifest, so no model is named in Python. A dbt source names the Dagster asset
that loads it in its YAML (``meta.dagster.asset_key``: the Postgres raw copy,
which itself comes after the lake table, so the lineage is right on both targets).

dbt never writes into the checkout: the import-time manifest lives in one fixed
folder under BIZOS_HOME, and each build writes its target/ and logs/ to a folder
of its own there (warehouse/dbt_runs.py), under the warehouse writer lock.
"""

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from filelock import FileLock

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.run_window import WINDOW_TAG, parse_window_tag
from core.settings import PROJECT_ROOT, Settings, get_settings
from core.tenancy import check_tenant_id
from quality.dbt_results import dbt_test_records
from quality.results import record_results
from warehouse.dbt_runs import (
    PARENT_PID_ENV,
    TENANT_ENV,
    dbt_run_dir,
    prune_dbt_runs,
    warehouse_lock,
    write_dbt_launcher,
)

DBT_DIR = PROJECT_ROOT / "dbt"
MANIFEST_DIR = get_settings().home / "dbt" / "manifest"
"""The one folder the import-time `dbt parse` writes; it is replaced, never grows."""
dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR, target_path=MANIFEST_DIR)

PARTIAL_PARSE = "partial_parse.msgpack"

BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


def build_args(run_tags: Mapping[str, str]) -> list[str]:
    """dbt's arguments for a run: a backfill's window (tag ``bizos/window``) becomes
    ``--vars {window_start, window_end}`` for the incremental marts'
    ``run_window_filter``. Only backfills pass vars: a change of vars costs dbt its
    partial parse (~10 s), which scheduled runs keep."""
    window = parse_window_tag(run_tags.get(WINDOW_TAG))
    if window is None:
        return list(BUILD_ARGS)
    return [*BUILD_ARGS, "--vars", json.dumps(window.dbt_vars())]


WAREHOUSE_POOL = "warehouse"
"""Dagster concurrency pool of the dbt build step: ops see queued builds in the UI."""


@contextmanager
def dbt_environment(settings: Settings, *, tenant_id: str | None = None) -> Iterator[None]:
    """dbt's committed profile reads env vars; set them for one invocation, with the
    pid whose death must take dbt down (warehouse/dbt_runs.py) and the run's tenant
    (dbt/macros/run_tenant.sql: an env var, not --vars, so partial parsing holds)."""
    env = {
        **settings.dbt_env(),
        PARENT_PID_ENV: str(os.getpid()),
        TENANT_ENV: check_tenant_id(tenant_id) if tenant_id else "",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def project_changed_since(stamp: float) -> bool:
    """Whether any file of the dbt project is newer than ``stamp``."""
    return any(
        p.stat().st_mtime > stamp
        for p in DBT_DIR.rglob("*")
        if p.is_file() and p.suffix in {".sql", ".yml", ".yaml", ".csv", ".md"}
    )


@cache
def ensure_manifest() -> Path:
    """Parse the project, at most once per process, when the manifest is missing or
    older than a project file. Processes starting together take turns on a file lock
    so none reads a half-written manifest."""
    manifest = dbt_project.manifest_path
    MANIFEST_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(MANIFEST_DIR / ".parse.lock")):
        if manifest.exists() and not project_changed_since(manifest.stat().st_mtime):
            return manifest
        from dbt.cli.main import dbtRunner

        args = ["parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
        args += ["--target-path", str(MANIFEST_DIR), "--log-path", str(MANIFEST_DIR), "--quiet"]
        with dbt_environment(get_settings()):
            result = dbtRunner().invoke(args)
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
    return manifest


def seed_partial_parse(target_path: Path) -> None:
    """Start a run's fresh target folder from the import-time parse, so dbt parses
    only what changed since (dagster-dbt copies it only from dbt/target)."""
    parsed = MANIFEST_DIR / PARTIAL_PARSE
    if parsed.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parsed, target_path / PARTIAL_PARSE)


SEEDS_AFTER = AssetKey(["raw", "crm_export__leads"])
"""What seeds are drawn after (see BizosDbtTranslator.get_asset_spec)."""


class BizosDbtTranslator(DagsterDbtTranslator):
    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        """Seeds (reference tables) are drawn after the raw tables, as the staging
        models are: Dagster runs a multi-asset's assets that have no upstream asset in
        a step of their own, which cost every tenant's run one more dbt start."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.startswith("seed."):
            return spec.merge_attributes(deps=[SEEDS_AFTER])
        return spec

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # meta.dagster.asset_key from the sources YAML
            return super().get_asset_key(dbt_resource_props)
        return AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        # fqn = [project, folder, ...]: the top folder (staging, intermediate, marts).
        return fqn[1] if len(fqn) > 2 else "warehouse"


translator = BizosDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=ensure_manifest(),
    partitions_def=tenants,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def bizos_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, bizos: BizosSettings
) -> Iterator[Any]:
    settings = bizos.get()
    run_id = context.run.run_id
    tenant_id = check_tenant_id(context.partition_key)
    prune_dbt_runs(settings, keep=max(settings.dbt_runs_kept - 1, 0))
    target_path = dbt_run_dir(settings, run_id)
    seed_partial_parse(target_path)
    with (
        # Warning level: the CLI's run logs show warnings and up, and a run held
        # up behind another is what an operator looks for.
        warehouse_lock(settings, run_id=run_id, log=context.log.warning),
        dbt_environment(settings, tenant_id=tenant_id),
    ):
        # The tenant goes in the environment: incremental marts rebuild its rows
        # only and tests look at its rows only (dbt/macros/run_tenant.sql). Unit
        # tests check the SQL, not the data: they run in `make test`
        # (tests/test_dbt_project.py), not in every tenant's build.
        try:
            yield from dbt.cli(
                build_args(context.run.tags),
                context=context,
                target_path=target_path,
            ).stream()
        finally:
            # dbt's test verdicts, kept beside the GX checks (docs/quality.md); a
            # failed build's passing tests are kept too.
            record_results(
                settings, dbt_test_records(target_path, tenant_ids=[tenant_id], run_id=run_id)
            )


def dbt_resource(settings: Settings) -> DbtCliResource:
    # The dbt of this environment, whether or not the venv is on PATH, started
    # through a launcher that ties its life to the run's process.
    executable = write_dbt_launcher(settings)
    return DbtCliResource(
        project_dir=dbt_project, target=settings.target.value, dbt_executable=str(executable)
    )
