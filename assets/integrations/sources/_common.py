"""Small pieces the source modules share: reading a credential, checking pages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from assets.integrations.http_client import MalformedPage


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
