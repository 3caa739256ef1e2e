"""Run the sandbox: in a background thread for tests and benchmarks, or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from sandbox.generator.truth import GroundTruth
from sandbox.generator.world import SOURCES
from sandbox.server.app import SandboxApp, create_app
from sandbox.server.faults import Fault, RequestRecord


def env_name(source: str) -> str:
    """The platform setting a connector reads its base URL from."""
    return f"BIZOS_{source.upper()}_BASE_URL"


LWA_TOKEN_ENV = "BIZOS_LWA_TOKEN_URL"
LWA_TOKEN_PATH = "/sp_api/auth/o2/token"
"""Where the sandbox serves Login with Amazon's token endpoint (SP-API's access tokens)."""


def sandbox_env(url: str) -> dict[str, str]:
    """Every setting that points the platform at a sandbox served at ``url``."""
    return {**{env_name(s): f"{url}/{s}" for s in SOURCES}, LWA_TOKEN_ENV: url + LWA_TOKEN_PATH}


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class RunningSandbox:
    """A sandbox serving in a background thread; a context manager that stops it on exit."""

    def __init__(
        self, app: SandboxApp, server: uvicorn.Server, thread: threading.Thread, url: str
    ) -> None:
        self.app = app
        self.url = url
        self.data_dir = app.sandbox.data_dir
        self._server = server
        self._thread = thread

    # -- addresses and credentials ------------------------------------------------
    def base_url(self, source: str) -> str:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
        return f"{self.url}/{source}"

    def env(self) -> dict[str, str]:
        """``{"BIZOS_STRIPE_BASE_URL": ".../stripe", ...}`` for every source, and
        ``BIZOS_LWA_TOKEN_URL`` (SP-API's token endpoint)."""
        return sandbox_env(self.url)

    def credential(self, tenant_id: str, source: str) -> dict[str, Any]:
        """The credentials.json entry: ``secret``, ``expired_secret``, GA4 ``property_id``..."""
        return dict(self.app.sandbox.keys.credentials[tenant_id][source])

    def tenant_token(self, tenant_id: str, source: str, *, expired: bool = False) -> str:
        """The key the sandbox accepts for this tenant and source (or its expired twin)."""
        return self.credential(tenant_id, source)["expired_secret" if expired else "secret"]

    @property
    def ground_truth(self) -> GroundTruth:
        return self.app.sandbox.truth

    # -- faults and the request log -----------------------------------------------
    def inject(
        self,
        source: str | None,
        kind: str | int,
        *,
        path: str | None = None,
        count: int = 1,
        after: int = 0,
        retry_after: float = 1.0,
        delay: float = 2.0,
    ) -> Fault:
        """Add a fault (see ``sandbox.server.faults``); ``count=0`` keeps it until cleared."""
        return self.app.sandbox.book.add(
            kind,
            source=source,
            path=path,
            count=count,
            after=after,
            retry_after=retry_after,
            delay=delay,
        )

    def clear_faults(self) -> None:
        self.app.sandbox.book.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        return self.app.sandbox.book.snapshot()

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.app.sandbox.book.records()

    def requests(self, source: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, by source and path prefix (relative to the source)."""
        return [
            r
            for r in self.request_log
            if (source is None or r.source == source) and (path is None or r.path.startswith(path))
        ]

    def count(self, source: str | None = None, path: str | None = None) -> int:
        return len(self.requests(source, path))

    def reset_log(self) -> None:
        self.app.sandbox.book.clear_log()

    # -- lifecycle ------------------------------------------------------------------
    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSandbox({self.url}, data={self.data_dir})"


def _config(app: SandboxApp, log_level: str, access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        timeout_keep_alive=30,
    )


def start_sandbox(data_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve ``data_dir`` on ``host:port`` (0: any free port) in a background thread."""
    app = create_app(Path(data_dir))
    sock = _bind(host, port)
    server = uvicorn.Server(_config(app, "warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bizos-sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the sandbox did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningSandbox(app, server, thread, _url(sock))


def serve_forever(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8100,
    *,
    on_ready: Callable[[str], None] | None = None,
    access_log: bool = True,
) -> None:
    """Serve in the foreground until interrupted; ``on_ready(url)`` once the port is bound."""
    app = create_app(Path(data_dir))
    sock = _bind(host, port)
    if on_ready:
        on_ready(_url(sock))
    uvicorn.Server(_config(app, "info", access_log=access_log)).run(sockets=[sock])
