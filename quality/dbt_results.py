"""dbt test results of one build, as kept check results.

dagster-dbt already reports each dbt test as an asset check on its model; this
copies the same verdicts into ``ops.check_results``, read from the build's own
``run_results.json`` and ``manifest.json`` (no second dbt call), so the health
dashboard sees dbt tests beside the GX checks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quality.results import ERROR, WARN, CheckRecord

PASSED = {"pass"}
"""dbt test statuses that pass; ``warn`` is a failure of a warn-severity test."""


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def dbt_test_records(
    target_path: Path, *, tenant_ids: Sequence[str], run_id: str
) -> list[CheckRecord]:
    """One record per dbt test the build ran and tenant it built; [] when the build
    wrote no results.

    A batch build's tests looked at all its tenants' rows at once, so each tenant
    gets the same verdicts. The build's files are read once whatever the tenants:
    a test's compiled SQL names every tenant of the batch, so ``run_results.json``
    grows with the batch, and reading it once per tenant cost a 1,000-tenant
    build minutes (bench/RESULTS.md, "dbt's first build as tenants grow")."""
    results_path = target_path / "run_results.json"
    manifest_path = target_path / "manifest.json"
    if not results_path.exists() or not manifest_path.exists():
        return []
    nodes = _load(manifest_path).get("nodes", {})
    verdicts = []
    for result in _load(results_path).get("results", []):
        unique_id = str(result.get("unique_id", ""))
        if not unique_id.startswith("test."):
            continue
        node = nodes.get(unique_id, {})
        attached = node.get("attached_node") or next(
            iter(node.get("depends_on", {}).get("nodes", [])), ""
        )
        model = nodes.get(attached, {}).get("name") or attached.split(".")[-1] or "dbt"
        severity = str(node.get("config", {}).get("severity", "error")).upper()
        status = str(result.get("status", ""))
        failures = result.get("failures")
        verdicts.append(
            {
                "check_name": str(node.get("name") or unique_id.split(".")[-2]),
                "asset_key": model,
                "passed": status in PASSED,
                # An error-severity test that fails stops the dbt build, and with
                # it everything downstream: it blocks.
                "blocking": severity == "ERROR",
                "severity": ERROR if severity == "ERROR" else WARN,
                "observed_value": f"{status}: {failures} failing rows"
                if failures is not None
                else status,
                "details": {"unique_id": unique_id, "message": result.get("message")},
            }
        )
    return [
        CheckRecord(tenant_id=tenant_id, run_id=run_id, **verdict)  # type: ignore[arg-type]
        for tenant_id in tenant_ids
        for verdict in verdicts
    ]
