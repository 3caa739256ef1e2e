"""The dbt project as Dagster assets, one tenant partition at a time.

Asset keys are model names and groups are dbt folders, both read from the
manifest, so no model is named in Python. A dbt source names the Dagster asset
that loads it in its YAML (``meta.dagster.asset_key``: the Postgres raw copy,
which itself comes after the lake table, so the lineage is right on both targets).
"""

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from assets.partitions import tenants
from assets.resources import BizosSettings
from core.settings import PROJECT_ROOT, Settings, get_settings
from core.tenancy import check_tenant_id

DBT_DIR = PROJECT_ROOT / "dbt"
dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """dbt's committed profile reads env vars; set them for one invocation."""
    saved = {key: os.environ.get(key) for key in settings.dbt_env()}
    os.environ.update(settings.dbt_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_manifest(settings: Settings | None = None) -> Path:
    """Parse the project when no manifest exists (fresh clone, CI)."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        from dbt.cli.main import dbtRunner

        with dbt_environment(settings or get_settings()):
            result = dbtRunner().invoke(
                ["parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--quiet"]
            )
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
    return manifest


def dbt_build_args(*, tenant_id: str) -> list[str]:
    """`dbt build` for one tenant: incremental models rebuild only its rows."""
    return ["build", "--vars", json.dumps({"tenant_id": check_tenant_id(tenant_id)})]


class BizosDbtTranslator(DagsterDbtTranslator):
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
)
def bizos_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, bizos: BizosSettings
) -> Iterator[Any]:
    settings = bizos.get()
    with dbt_environment(settings):
        yield from dbt.cli(
            dbt_build_args(tenant_id=context.partition_key), context=context
        ).stream()


def dbt_resource(settings: Settings) -> DbtCliResource:
    # The dbt of this environment, whether or not the venv is on PATH.
    executable = Path(sys.executable).parent / "dbt"
    return DbtCliResource(
        project_dir=dbt_project, target=settings.target.value, dbt_executable=str(executable)
    )
