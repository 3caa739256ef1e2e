"""Dagster past one machine: runs launched as Kubernetes Jobs, steps as Jobs.

No cluster runs here, so the Kubernetes API is a local HTTP server that speaks
its documented shapes for what the launcher calls (create, read and delete a
``batch/v1`` Job, list pods) and checks the bearer token from the kubeconfig.
The launcher itself is dagster-k8s's, loaded from the dagster.yaml the platform
writes, against a real Postgres-backed Dagster instance.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from dagster._core.code_pointer import CodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from pydantic import ValidationError

from core.settings import PROJECT_ROOT, Settings, get_settings
from pipelines.definitions import build_definitions
from pipelines.runner import dagster_instance

TOKEN = "kube-token-for-tests"
PASSWORD = "pw-never-in-a-manifest"
IMAGE = "registry.example/bizos-lakehouse:1.4.2"
IMAGE_PYTHON = "/opt/bizos/.venv/bin/python"
JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/?]+))?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")


@dataclass
class KubeApi:
    url: str
    created: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unauthorized: int = 0


@pytest.fixture
def kube_api() -> Iterator[KubeApi]:
    api = KubeApi(url="")
    jobs: dict[tuple[str, str], dict[str, Any]] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            api.unauthorized += 1
            self._send(401, {"kind": "Status", "status": "Failure", "code": 401})
            return False

        def do_POST(self) -> None:
            if not self._authorized():
                return
            match = JOBS.match(urlsplit(self.path).path)
            if not match or match.group(2):
                self._send(404, {"kind": "Status", "code": 404})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["metadata"]["namespace"] = match.group(1)
            body["metadata"]["uid"] = f"uid-{len(api.created)}"
            body["status"] = {}
            jobs[(match.group(1), body["metadata"]["name"])] = body
            api.created.append(body)
            self._send(201, body)

        def do_GET(self) -> None:
            if not self._authorized():
                return
            path = urlsplit(self.path).path
            if PODS.match(path):
                self._send(200, {"kind": "PodList", "apiVersion": "v1", "items": []})
                return
            match = JOBS.match(path)
            job = jobs.get((match.group(1), match.group(2) or "")) if match else None
            if job is None:
                self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                return
            self._send(200, {**job, "status": {"active": 1}})

        def do_DELETE(self) -> None:
            if not self._authorized():
                return
            match = JOBS.match(urlsplit(self.path).path)
            if match and jobs.pop((match.group(1), match.group(2) or ""), None):
                api.deleted.append(match.group(2))
                self._send(200, {"kind": "Status", "status": "Success"})
            else:
                self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": server}}],
                "users": [{"name": "bizos", "user": {"token": TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "bizos"}}],
                "current-context": "test",
            }
        ),
        encoding="utf-8",
    )
    return path


def with_password(url: str) -> str:
    """The test server trusts every login; a password in the URL still lets the test
    check that it never reaches dagster.yaml or a Job manifest."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def cluster_settings(
    bizos_home: Path, pg_url: str, kube_api: KubeApi, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    # dagster_instance() exports DAGSTER_HOME: set here, so it is restored after.
    monkeypatch.setenv("DAGSTER_HOME", str(bizos_home / "dagster"))
    return get_settings(
        home=bizos_home,
        database_url=with_password(pg_url),
        run_launcher="k8s",
        step_executor="k8s",
        k8s_namespace="bizos-prod",
        k8s_job_image=IMAGE,
        k8s_env_secrets=["bizos-env", "bizos-aws"],
        k8s_kubeconfig=kubeconfig(bizos_home / "kubeconfig", kube_api.url),
    )


def test_a_launched_run_becomes_a_kubernetes_job_with_secrets_by_name_only(
    cluster_settings: Settings, kube_api: KubeApi
) -> None:
    instance = dagster_instance(cluster_settings)
    try:
        assert type(instance.run_launcher).__name__ == "K8sRunLauncher"
        defs = build_definitions(cluster_settings)
        job = defs.resolve_job_def("materialize_all")
        origin = JobPythonOrigin(
            job.name,
            RepositoryPythonOrigin(
                # What the code location server in the image reports (deploy/Dockerfile).
                executable_path=IMAGE_PYTHON,
                code_pointer=CodePointer.from_module(
                    "pipelines.definitions", "defs", working_directory=str(PROJECT_ROOT)
                ),
            ),
        )
        run = instance.create_run_for_job(
            job, job_code_origin=origin, tags={"dagster/partition": "acme-robotics"}
        )
        instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]

        assert kube_api.unauthorized == 0
        [manifest] = kube_api.created
        assert manifest["kind"] == "Job"
        assert manifest["metadata"]["namespace"] == "bizos-prod"
        assert manifest["metadata"]["labels"]["dagster/run-id"] == run.run_id
        pod = manifest["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == IMAGE
        assert container["args"][:5] == [IMAGE_PYTHON, "-m", "dagster", "api", "execute_run"]
        secrets = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
        assert secrets == ["bizos-env", "bizos-aws"]
        # The run pod reads the instance (Postgres storage) from the serialized
        # dagster.yaml in its arguments: the password is named, never included.
        assert PASSWORD not in json.dumps(manifest)
        assert PASSWORD not in (cluster_settings.home / "dagster" / "dagster.yaml").read_text()

        launched = instance.get_run_by_id(run.run_id)
        assert launched is not None
        assert launched.tags.get("dagster/image") == IMAGE

        assert instance.run_launcher.terminate(run.run_id)
        assert kube_api.deleted == [manifest["metadata"]["name"]]
    finally:
        instance.dispose()


def test_steps_run_as_kubernetes_jobs_when_the_settings_say_so(
    cluster_settings: Settings,
) -> None:
    defs = build_definitions(cluster_settings)
    executor = defs.resolve_job_def("materialize_all").executor_def
    assert executor.name == "k8s"
    resolved = executor.apply_config_mapping({})
    assert resolved.success, resolved.errors
    config = resolved.value["config"]
    assert config["job_namespace"] == "bizos-prod"
    assert config["env_secrets"] == ["bizos-env", "bizos-aws"]
    assert config["job_image"] == IMAGE
    # Without the setting, jobs keep Dagster's multiprocess default.
    plain = get_settings(home=cluster_settings.home, database_url=cluster_settings.postgres_url)
    default = build_definitions(plain).resolve_job_def("materialize_all").executor_def
    assert default.name == "multi_or_in_process_executor"


@pytest.mark.parametrize("setting", ["run_launcher", "step_executor"])
def test_kubernetes_refuses_the_embedded_defaults_with_a_reason(
    bizos_home: Path, setting: str
) -> None:
    with pytest.raises(ValidationError, match="needs BIZOS_DATABASE_URL"):
        get_settings(home=bizos_home, **{setting: "k8s"})
