"""Dagster on a cluster: the run launcher and step executor the settings choose.

On one machine Dagster's defaults fit: the daemon starts each run as a local
process and its steps run in processes beside it. On Kubernetes each launched run
becomes a Job of its own (``K8sRunLauncher``), so runs of many tenants spread over
the cluster's nodes, and optionally each step a Job too (``k8s_job_executor``),
so a large dbt build gets a pod sized for it. What a pod needs reaches it from
Kubernetes Secrets named in the settings (``envFrom``): dagster.yaml and the Job
manifests hold their names, never their values. See docs/scaling.md.
"""

from __future__ import annotations

from typing import Any

from dagster import ExecutorDefinition

from core.settings import RunLauncher, Settings, StepExecutor


def run_launcher_config(settings: Settings) -> dict[str, Any] | None:
    """The ``run_launcher`` entry of dagster.yaml; None keeps Dagster's default."""
    if settings.run_launcher is not RunLauncher.K8S:
        return None
    config: dict[str, Any] = {
        "job_namespace": settings.k8s_namespace,
        "instance_config_map": settings.k8s_instance_config_map,
        "env_secrets": list(settings.k8s_env_secrets),
        "service_account_name": settings.k8s_service_account,
        "image_pull_policy": "IfNotPresent",
        # The run's own exit code tells Kubernetes (and run monitoring) it failed.
        "fail_pod_on_run_failure": True,
        "load_incluster_config": settings.k8s_kubeconfig is None,
    }
    if settings.k8s_kubeconfig is not None:
        config["kubeconfig_file"] = str(settings.k8s_kubeconfig)
    if settings.k8s_job_image:
        config["job_image"] = settings.k8s_job_image
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def step_executor(settings: Settings) -> ExecutorDefinition | None:
    """The executor of every job; None keeps Dagster's (multiprocess) default."""
    if settings.step_executor is not StepExecutor.K8S:
        return None
    from dagster_k8s import k8s_job_executor

    config: dict[str, Any] = {
        "job_namespace": settings.k8s_namespace,
        "env_secrets": list(settings.k8s_env_secrets),
        "service_account_name": settings.k8s_service_account,
        "load_incluster_config": settings.k8s_kubeconfig is None,
        # Steps of different tenants' runs share the cluster: bound each run's
        # fan-out so one backfill cannot take every node.
        "max_concurrent": 4,
    }
    if settings.k8s_kubeconfig is not None:
        config["kubeconfig_file"] = str(settings.k8s_kubeconfig)
    if settings.k8s_job_image:
        config["job_image"] = settings.k8s_job_image
    return k8s_job_executor.configured(config, name="k8s")
