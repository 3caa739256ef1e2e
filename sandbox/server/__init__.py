"""The local sandbox: each provider's documented HTTP API over generated data.

    with start_sandbox(data_dir) as sb:
        sb.base_url("stripe")             # -> BIZOS_STRIPE_BASE_URL
        sb.tenant_token("acme-robotics", "stripe")
        sb.inject("stripe", "429", path="/v1/charges", count=2, retry_after=0)

See docs/sandbox.md for the endpoints and the fault specification.
"""

from sandbox.server.app import SandboxApp, create_app
from sandbox.server.faults import KINDS as FAULT_KINDS
from sandbox.server.faults import Fault, RequestRecord
from sandbox.server.running import (
    RunningSandbox,
    env_name,
    sandbox_env,
    serve_forever,
    start_sandbox,
)

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "RequestRecord",
    "RunningSandbox",
    "SandboxApp",
    "create_app",
    "env_name",
    "sandbox_env",
    "serve_forever",
    "start_sandbox",
]
