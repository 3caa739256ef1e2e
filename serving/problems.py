"""Errors as ``application/problem+json`` (RFC 9457), each carrying the request id.

Every error the API gives, whoever raised it (a route, validation, the router's own
404/405, a store outage), goes through ``problem``, so clients parse one shape.
Validation errors list where the input was wrong (``errors[].loc``) but never echo
the input itself: it may be huge, binary, or a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving.store import NothingPublished, StoreUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# How long a client should wait after a 503 before retrying: the DB timeouts' order.
RETRY_AFTER_S = 2


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem+json response; ``detail`` is for humans and must never hold a secret."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id(request),
        **extensions,
    }
    # ensure_ascii: a path or detail may hold a lone surrogate or control characters.
    return Response(
        json.dumps(body, ensure_ascii=True, separators=(",", ":")),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return problem(request, exc.status_code, str(exc.detail), headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    where = ", ".join(".".join(e["loc"]) for e in errors) or "the request"
    return problem(request, 422, f"invalid input in {where}", errors=errors)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After, not 500: the API is fine, the data behind it is not (yet)."""
    if isinstance(exc, NothingPublished):
        detail = "nothing has been published yet"
    else:
        detail = "serving store unavailable"
        log.warning("serving store unavailable on %s: %s", request.url.path, exc)
    return problem(request, 503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _bad_value(request: Request, exc: Exception) -> Response:
    return problem(request, 400, str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return problem(request, 500, "internal error; quote the request id when reporting it")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(ValueError, _bad_value)
    app.add_exception_handler(Exception, _unexpected)
