"""What every provider's routes share: the data, the keys, and small response helpers."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from sandbox.generator.truth import GroundTruth
from sandbox.server.faults import FaultBook
from sandbox.server.store import Store

CREDENTIALS_FILE = "credentials.json"


class KeyState(Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class KeyCheck:
    state: KeyState
    tenant_id: str | None = None
    key: str | None = None


class Keys:
    """Which tenant a presented key belongs to, per source."""

    def __init__(self, credentials: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.credentials = credentials
        self._by_key: dict[tuple[str, str], tuple[str, KeyState]] = {}
        for tenant_id, sources in credentials.items():
            for source, entry in sources.items():
                self._by_key[(source, entry["secret"])] = (tenant_id, KeyState.OK)
                if entry.get("expired_secret"):
                    self._by_key[(source, entry["expired_secret"])] = (tenant_id, KeyState.EXPIRED)

    def check(self, source: str, key: str | None) -> KeyCheck:
        if not key:
            return KeyCheck(KeyState.MISSING)
        found = self._by_key.get((source, key))
        if found is None:
            return KeyCheck(KeyState.INVALID, key=key)
        tenant_id, state = found
        return KeyCheck(state, tenant_id if state is KeyState.OK else None, key)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def basic_username(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


@dataclass
class Sandbox:
    data_dir: Path
    store: Store
    keys: Keys
    truth: GroundTruth
    book: FaultBook

    @classmethod
    def open(cls, data_dir: Path) -> Sandbox:
        data_dir = Path(data_dir)
        creds_path = data_dir / CREDENTIALS_FILE
        if not creds_path.is_file():
            raise FileNotFoundError(
                f"{creds_path} not found: generate the data first (bizos generate)"
            )
        return cls(
            data_dir=data_dir,
            store=Store(data_dir),
            keys=Keys(json.loads(creds_path.read_text())),
            truth=GroundTruth.load(data_dir),
            book=FaultBook(),
        )

    @property
    def as_of(self) -> datetime:
        return datetime.strptime(self.truth.as_of, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def profile(self, tenant_id: str) -> dict[str, Any]:
        return self.truth.tenants[tenant_id].profile


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; ``body`` may be pre-serialized text (pages are built from stored JSON)."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def parse_time(value: str) -> int:
    """Epoch seconds from an ISO-8601 timestamp (``Z`` or an offset; naive means UTC) or digits."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def encode_cursor(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_cursor(text: str) -> Any:
    """The object in an opaque cursor; ``ValueError`` if it is not one of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid cursor {text!r}") from exc


def page_json(items: list[str]) -> str:
    """A JSON array from payloads already serialized."""
    return "[" + ",".join(items) + "]"
