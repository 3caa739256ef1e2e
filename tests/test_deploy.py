"""The Kubernetes deployment files agree with the code they deploy.

No cluster or Helm runs here (docs/scaling.md says what was checked and how), so
these catch the drift that would break a deployment silently: a code location
module that no longer holds the definitions, Secret names the launcher and the
step executor disagree on, Dagster's schema under another name.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from dagster import Definitions

from core.settings import PROJECT_ROOT, get_settings
from pipelines.runner import DAGSTER_SCHEMA

VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"
DOCKERFILE = PROJECT_ROOT / "deploy" / "Dockerfile"


def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_code_location_the_chart_starts_holds_the_definitions() -> None:
    [deployment] = values()["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[0] == "-m"
    module = importlib.import_module(args[1])
    assert isinstance(module.defs, Definitions)
    # The image's default command serves the same module.
    assert f'"-m", "{args[1]}"' in DOCKERFILE.read_text(encoding="utf-8")


def test_run_and_step_pods_get_the_same_secrets_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    v = values()
    [deployment] = v["dagster-user-deployments"]["deployments"]
    launcher = v["runLauncher"]["config"]["k8sRunLauncher"]
    run_secrets = [s["name"] for s in launcher["envSecrets"]]
    code_secrets = [s["name"] for s in deployment["envSecrets"]]
    # The code location reads its settings from the environment the chart sets.
    for name, value in deployment["env"].items():
        monkeypatch.setenv(name, value)
    settings = get_settings(database_url="postgresql://bizos@pg.internal/bizos")
    assert run_secrets == code_secrets == settings.k8s_env_secrets
    assert launcher["jobNamespace"] == settings.k8s_namespace


def test_dagster_storage_is_the_platforms_postgres_schema() -> None:
    pg = values()["postgresql"]
    assert pg["enabled"] is False
    assert pg["postgresqlParams"]["options"] == f"-csearch_path={DAGSTER_SCHEMA}"
