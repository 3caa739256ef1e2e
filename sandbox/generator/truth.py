"""The hidden ground truth of a generated data set, and its JSON form.

Tests and later issues compare what was ingested (counts, id checksums, GA4
totals) and what was scored (which leads convert) against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROPENSITY_MODEL = (
    "propensity = mean(title, industry, company_size, source weights) - free_mail_penalty; "
    "converts ~ Bernoulli(propensity ** 2). Engagement (activities, site visits to pricing and "
    "demo pages) follows 0.5 + 2 * propensity + 2.5 if the lead converts."
)


@dataclass(frozen=True)
class TableTruth:
    count: int
    id_checksum: str
    min_ts: int | None = None
    max_ts: int | None = None
    defects: dict[str, Any] = field(default_factory=dict)

    def defective_ids(self, kind: str = "missing_field") -> set[str]:
        """Ids of records broken in the given way (``missing_field`` or ``unknown_field``)."""
        return {i for d in self.defects.values() if d["kind"] == kind for i in d["ids"]}


@dataclass(frozen=True)
class LeadTruth:
    converts: bool
    propensity: float
    status: str
    factors: dict[str, float]
    engagement: float
    activities: int


@dataclass
class TenantTruth:
    tenant_id: str
    profile: dict[str, Any]
    tables: dict[str, TableTruth]
    leads: dict[str, LeadTruth]
    facts: dict[str, Any]


@dataclass
class GroundTruth:
    seed: int
    scale: float
    as_of: str
    with_defects: bool
    tenants: dict[str, TenantTruth]

    FILE = "ground_truth.json"

    def table(self, tenant_id: str, name: str) -> TableTruth:
        """``truth.table("acme-robotics", "stripe.charges").count``"""
        return self.tenants[tenant_id].tables[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "seed": self.seed,
            "scale": self.scale,
            "as_of": self.as_of,
            "with_defects": self.with_defects,
            "propensity_model": PROPENSITY_MODEL,
            "checksum": "sum mod 2**64 of the first 8 bytes (big-endian) of sha256(id), 16 hex",
            "tenants": {
                t.tenant_id: {
                    "profile": t.profile,
                    "tables": {
                        name: {
                            "count": tt.count,
                            "id_checksum": tt.id_checksum,
                            "min_ts": tt.min_ts,
                            "max_ts": tt.max_ts,
                            **({"defects": tt.defects} if tt.defects else {}),
                        }
                        for name, tt in sorted(t.tables.items())
                    },
                    "leads": {
                        lead_id: {
                            "converts": lt.converts,
                            "propensity": lt.propensity,
                            "status": lt.status,
                            "factors": lt.factors,
                            "engagement": lt.engagement,
                            "activities": lt.activities,
                        }
                        for lead_id, lt in sorted(t.leads.items())
                    },
                    "facts": t.facts,
                }
                for t in self.tenants.values()
            },
        }

    def save(self, out_dir: Path) -> Path:
        path = out_dir / self.FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, out_dir: Path) -> GroundTruth:
        """Read ``<out_dir>/ground_truth.json`` (or the file itself)."""
        path = out_dir if out_dir.is_file() else out_dir / cls.FILE
        raw = json.loads(path.read_text())
        tenants = {}
        for tenant_id, t in raw["tenants"].items():
            tenants[tenant_id] = TenantTruth(
                tenant_id=tenant_id,
                profile=t["profile"],
                tables={
                    name: TableTruth(
                        count=v["count"],
                        id_checksum=v["id_checksum"],
                        min_ts=v["min_ts"],
                        max_ts=v["max_ts"],
                        defects=v.get("defects", {}),
                    )
                    for name, v in t["tables"].items()
                },
                leads={lead_id: LeadTruth(**v) for lead_id, v in t["leads"].items()},
                facts=t["facts"],
            )
        return cls(
            seed=raw["seed"],
            scale=raw["scale"],
            as_of=raw["as_of"],
            with_defects=raw["with_defects"],
            tenants=tenants,
        )
