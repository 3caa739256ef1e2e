"""What happens to a sandbox Stripe account after its data was generated.

The generated Parquet files are the account as of ``as_of`` and are never
rewritten. Changes made through the API (``POST /v1/refunds``, the sandbox-only
dispute route) are appended to
``<data>/<tenant>/stripe/changes.jsonl``, one line per new or changed object
(``{"resource": ..., "object": ...}``) and per event (``resource: "events"``), and
replayed when the sandbox opens the data again. The list endpoints serve an
object's latest version in place of the generated one, and objects created
after ``as_of`` (refund balance transactions, events) ahead of the generated
ones, as Stripe lists newest first.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

CHANGES_FILE = "changes.jsonl"


@dataclass
class AccountChanges:
    """One tenant's changed objects, by resource and id, and its new objects in order."""

    latest: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    added: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Ids of objects created after the generated data, oldest first, per resource."""


class StripeChanges:
    """The change log of every tenant of one data directory; thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._accounts: dict[str, AccountChanges] = {}

    def _path(self, tenant_id: str) -> Path:
        return self.data_dir / tenant_id / "stripe" / CHANGES_FILE

    def _account(self, tenant_id: str) -> AccountChanges:
        account = self._accounts.get(tenant_id)
        if account is None:
            account = AccountChanges()
            path = self._path(tenant_id)
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        self._apply(account, entry["resource"], entry["object"], entry["new"])
            self._accounts[tenant_id] = account
        return account

    @staticmethod
    def _apply(account: AccountChanges, resource: str, obj: dict[str, Any], new: bool) -> None:
        if new and obj["id"] not in account.latest[resource]:
            account.added[resource].append(obj["id"])
        account.latest[resource][obj["id"]] = obj

    def record(self, tenant_id: str, changes: list[tuple[str, Mapping[str, Any], bool]]) -> None:
        """Append ``(resource, object, is_new)`` entries, durably, then serve them."""
        with self._lock:
            account = self._account(tenant_id)
            path = self._path(tenant_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                for resource, obj, new in changes:
                    fh.write(json.dumps({"resource": resource, "object": obj, "new": new}) + "\n")
            for resource, obj, new in changes:
                self._apply(account, resource, dict(obj), new)

    def latest(self, tenant_id: str, resource: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._account(tenant_id).latest[resource].get(object_id)

    def has_changes(self, tenant_id: str, resource: str) -> bool:
        with self._lock:
            return bool(self._account(tenant_id).latest[resource])

    def added(
        self,
        tenant_id: str,
        resource: str,
        bounds: Mapping[str, int],
        types: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects created after the generated data, newest first, within ``created``
        bounds (``gt``/``gte``/``lt``/``lte``) and, for events, of the given types
        (``*`` a wildcard, as Stripe's ``types[]``)."""
        with self._lock:
            account = self._account(tenant_id)
            objects = [account.latest[resource][i] for i in account.added[resource]]
        out = []
        for obj in reversed(objects):
            created = obj["created"]
            if "gt" in bounds and not created > bounds["gt"]:
                continue
            if "gte" in bounds and not created >= bounds["gte"]:
                continue
            if "lt" in bounds and not created < bounds["lt"]:
                continue
            if "lte" in bounds and not created <= bounds["lte"]:
                continue
            if types and not any(fnmatchcase(obj.get("type", ""), t) for t in types):
                continue
            out.append(obj)
        return out

    def last_created(self, tenant_id: str) -> int:
        """The newest ``created`` of any object added so far (0 when none)."""
        with self._lock:
            account = self._account(tenant_id)
            return max(
                (account.latest[r][i]["created"] for r, ids in account.added.items() for i in ids),
                default=0,
            )
