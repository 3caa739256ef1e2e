"""Connect tenants to the sandbox: store the keys the generator made for them.

What a tenant does in the product when it connects Stripe or GA4, done for
every generated tenant and source, so ``bizos ingest`` and the Dagster assets
find a credential as they would in production.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import credentials
from core.settings import Settings


def stored_secret(source: str, entry: dict[str, str]) -> str:
    """The credential as the connector reads it (GA4 keeps its property id beside it)."""
    if source == "ga4":
        return json.dumps({"access_token": entry["secret"], "property_id": entry["property_id"]})
    return entry["secret"]


def connect_sandbox_tenants(
    settings: Settings, data_dir: Path, *, tenants: list[str] | None = None
) -> list[tuple[str, str]]:
    """Store every (tenant, source) sandbox credential; returns what was stored."""
    path = data_dir / "credentials.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `bizos generate` first")
    generated: dict[str, dict[str, dict[str, str]]] = json.loads(path.read_text())
    stored = []
    for tenant_id, by_source in sorted(generated.items()):
        if tenants and tenant_id not in tenants:
            continue
        for source, entry in sorted(by_source.items()):
            credentials.set_secret(
                settings,
                tenant_id=tenant_id,
                source=source,
                secret=stored_secret(source, entry),
                actor="cli:connect-sandbox",
            )
            stored.append((tenant_id, source))
    return stored


def demo_master_key(settings: Settings) -> Path:
    """The embedded demo's master key: made once, kept 0600 in the state folder.

    Only for the demo on one machine, which has no secret store to take a key
    from; a deployment sets ``BIZOS_MASTER_KEY`` from its own secret manager.
    """
    path = settings.state_dir / "demo_master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(credentials.generate_master_key().encoded())
    return path
