"""The API's /metrics as numbers, for tests that watch its counters and gauges."""

from __future__ import annotations

from fastapi.testclient import TestClient


def api_metrics(client: TestClient, *prefixes: str) -> dict[str, float]:
    """Every unlabelled sample of ``/metrics`` whose name starts with one of
    ``prefixes`` (all of them when none is given), by name."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        if not prefixes or name.startswith(prefixes):
            found[name] = float(value)
    return found
