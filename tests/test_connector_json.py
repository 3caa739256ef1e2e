"""The connectors' JSON both ways (orjson with the standard library behind it):
a page decodes to the values the standard library gives, and a landed value is
the text the standard library's encoder wrote, whatever orjson cannot do."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import httpx
import pytest

from connectors.http_client import decode_json
from connectors.landing import _json, _stdlib_json


def page(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


def test_a_page_decodes_as_with_the_standard_library() -> None:
    body = json.dumps(
        {"data": [{"id": "ch_1", "amount": 2099, "paid": True, "fee": 1.5, "name": "Zoë"}]}
    ).encode()
    assert decode_json(page(body)) == json.loads(body)


def test_an_integer_beyond_64_bits_stays_exact() -> None:
    # orjson alone reads it as a float and loses digits.
    body = b'{"data": [{"id": "x", "amount": 123456789012345678901234567890}]}'
    amount = decode_json(page(body))["data"][0]["amount"]
    assert amount == 123456789012345678901234567890
    assert isinstance(amount, int)


def test_nan_decodes_as_the_standard_library_reads_it() -> None:
    assert math.isnan(decode_json(page(b'{"rate": NaN}'))["rate"])


def test_a_body_that_is_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        decode_json(page(b"<html>busy</html>"))


@pytest.mark.parametrize(
    "value",
    [
        {"id": "ch_1", "nested": {"list": [1, "two", None, True]}, "text": 'Zoë \u2603 "q"'},
        {"big": 123456789012345678901234567890},  # orjson refuses: stdlib writes it
        {1: "non-text key"},  # orjson refuses: stdlib writes "1"
        {"at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC)},  # default=str, as before
        {"nul": "a\x00b"},  # escaped, so the NUL check finds "\\u0000" in _raw
    ],
)
def test_landed_json_is_the_standard_library_text(value: object) -> None:
    assert _json(value) == _stdlib_json(value)
