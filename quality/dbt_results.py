"""dbt test results of one build, as kept check results.

dagster-dbt already reports each dbt test as an asset check on its model; this
copies the same verdicts into ``ops.check_results``, read from the build's own
``run_results.json`` and ``manifest.json`` (no second dbt call), so the health
dashboard sees dbt tests beside the GX checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quality.results import ERROR, WARN, CheckRecord

PASSED = {"pass"}
"""dbt test statuses that pass; ``warn`` is a failure of a warn-severity test."""


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def dbt_test_records(target_path: Path, *, tenant_id: str, run_id: str) -> list[CheckRecord]:
    """One record per dbt test the build ran; [] when the build wrote no results."""
    results_path = target_path / "run_results.json"
    manifest_path = target_path / "manifest.json"
    if not results_path.exists() or not manifest_path.exists():
        return []
    nodes = _load(manifest_path).get("nodes", {})
    records = []
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
        records.append(
            CheckRecord(
                check_name=str(node.get("name") or unique_id.split(".")[-2]),
                asset_key=model,
                tenant_id=tenant_id,
                passed=status in PASSED,
                # An error-severity test that fails stops the dbt build, and with
                # it everything downstream: it blocks.
                blocking=severity == "ERROR",
                severity=ERROR if severity == "ERROR" else WARN,
                observed_value=f"{status}: {failures} failing rows"
                if failures is not None
                else status,
                details={"unique_id": unique_id, "message": result.get("message")},
                run_id=run_id,
            )
        )
    return records
