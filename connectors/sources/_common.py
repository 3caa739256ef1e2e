"""Small pieces the source modules share: reading a credential, checking pages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.http_client import MalformedPage


def secret_value(secret: str, *names: str) -> str:
    """The token in a credential: the secret itself, or a named field of a JSON secret."""
    text = secret.strip()
    if not text:
        raise ValueError("empty credential")
    if text.startswith("{"):
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON credential must be an object")
        for name in names:
            value = parsed.get(name)
            if isinstance(value, str) and value:
                return value
        raise KeyError(names[0] if names else "token")
    return text


def secret_options(secret: str, *names: str) -> dict[str, Any]:
    """Non-secret fields of a JSON credential (a property id, an account id)."""
    text = secret.strip()
    if not text.startswith("{"):
        return {}
    parsed = json.loads(text)
    return {n: parsed[n] for n in names if isinstance(parsed, dict) and parsed.get(n) is not None}


def require_list(data: Any, key: str, *, where: str = "") -> list[Any]:
    """``data[key]`` as a list, or MalformedPage saying what is wrong."""
    if not isinstance(data, Mapping):
        raise MalformedPage(f"expected a JSON object{where}, got {type(data).__name__}")
    value = data.get(key)
    if not isinstance(value, list):
        raise MalformedPage(f"'{key}' is missing or not a list{where}")
    return value


def require_objects(items: Sequence[Any], what: str) -> None:
    """Every item a JSON object: anything else means the page itself is broken."""
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MalformedPage(f"{what} item {n} is {type(item).__name__}, not an object")


def later(a: Any, b: Any) -> Any:
    """The larger of two cursor values where either may be None."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def utc_time(value: Any) -> datetime | None:
    """An ISO-8601 text (``Z`` or an offset; naive means UTC) as a UTC datetime, else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def in_window(
    records: Sequence[Mapping[str, Any]], field: str, window: tuple[datetime, datetime]
) -> tuple[list[Mapping[str, Any]], bool]:
    """For a provider listing in ``field`` order with a lower time bound only: the
    records stamped within ``[start, end)`` (and those not readably stamped, which
    landing quarantines), and whether the page went past ``end``, after which
    nothing more can be in the window."""
    start, end = window
    kept = []
    past = False
    for record in records:
        moment = utc_time(record.get(field))
        if moment is not None and moment >= end:
            past = True
        elif moment is None or moment >= start:
            kept.append(record)
    return kept, past


def iso_z(moment: datetime) -> str:
    """A UTC ISO-8601 text with ``Z``, to the microsecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
