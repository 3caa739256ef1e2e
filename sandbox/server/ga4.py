"""The GA4 Data API under ``/ga4``: ``POST /v1beta/properties/{id}:runReport``.

The report is aggregated on request from the finest-grain rows: any subset of
the supported dimensions, any of the supported metrics (``totalUsers`` counts
distinct clients), one or more ``dateRanges`` (dates, ``today``, ``yesterday``,
``NdaysAgo``, relative to the data's as-of date), ``orderBys``, ``limit`` (default
10,000, at most 250,000) and ``offset``. Rows are ordered by the ``orderBys``
then by every dimension, so offset paging is stable. As the real API does (proto3
JSON), an empty report has no ``rows`` and no ``rowCount``.

Auth: ``Authorization: Bearer <access token>``; the token's tenant must own the
property. ``POST /ga4/token`` trades a service-account JWT (``grant_type``
``urn:ietf:params:oauth:grant-type:jwt-bearer``, ``assertion``) for that access
token, checking only the ``iss`` claim.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from sandbox.server.context import KeyState, Sandbox, bearer, json_response

DIMENSIONS = {
    "date": "date",
    "pagePath": "pagePath",
    "sessionSourceMedium": "sessionSourceMedium",
    "sessionSource": "split_part(sessionSourceMedium, ' / ', 1)",
    "sessionMedium": "split_part(sessionSourceMedium, ' / ', 2)",
    "clientId": "clientId",
    "userId": "userId",
}
METRICS = {
    "sessions": "sum(sessions)",
    "totalUsers": "count(DISTINCT clientId)",
    "activeUsers": "count(DISTINCT clientId)",
    "screenPageViews": "sum(screenPageViews)",
    "conversions": "sum(conversions)",
    "keyEvents": "sum(conversions)",
}
MAX_LIMIT = 250_000
SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
ACCEPTED = {
    "dateRanges",
    "dimensions",
    "metrics",
    "limit",
    "offset",
    "orderBys",
    "keepEmptyRows",
    "returnPropertyQuota",
    "currencyCode",
    "property",
}
RELATIVE = re.compile(r"^(\d+)daysAgo$")
AUTH_HELP = (
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


class BadRequest(Exception):
    pass


def google_error(
    status: int, message: str, state: str, reason: str | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {"code": status, "message": message, "status": state}
    if reason:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {
                    "service": "analyticsdata.googleapis.com",
                    "method": "google.analytics.data.v1beta.BetaAnalyticsData.RunReport",
                },
            }
        ]
    return {"error": err}


def error_body(status: int) -> dict[str, Any]:
    if status == 429:
        return google_error(
            429,
            "Exhausted concurrent requests quota for this property.",
            "RESOURCE_EXHAUSTED",
        )
    if status == 503:
        return google_error(503, "The service is currently unavailable.", "UNAVAILABLE")
    return google_error(500, "Internal error encountered.", "INTERNAL")


def _day(text: str, today: date) -> date:
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    m = RELATIVE.match(text)
    if m:
        return today - timedelta(days=int(m.group(1)))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"Invalid date {text!r}: use YYYY-MM-DD, today, yesterday or NdaysAgo."
        ) from None


def _int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid value at '{name}' ({value!r}): not an integer.") from None


def build_report(sb: Sandbox, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - ACCEPTED
    if unknown:
        raise BadRequest(f"The sandbox does not support {', '.join(sorted(unknown))} in runReport.")
    dims = [str(d.get("name")) if isinstance(d, dict) else "" for d in body.get("dimensions", [])]
    mets = [str(m.get("name")) if isinstance(m, dict) else "" for m in body.get("metrics", [])]
    for name in dims:
        if name not in DIMENSIONS:
            raise BadRequest(
                f"Field {name} is not a valid dimension. For a list of valid dimensions and "
                f"metrics, see {SCHEMA_URL} "
            )
    for name in mets:
        if name not in METRICS:
            raise BadRequest(
                f"Field {name} is not a valid metric. For a list of valid dimensions and "
                f"metrics, see {SCHEMA_URL} "
            )
    if len(set(dims)) != len(dims) or len(set(mets)) != len(mets):
        raise BadRequest("Dimensions and metrics must not repeat in a request.")
    if not mets and not dims:
        raise BadRequest("A report needs at least one dimension or metric.")
    ranges = body.get("dateRanges") or []
    if not ranges:
        raise BadRequest("Must specify at least one date range.")
    limit = _int(body, "limit", 10_000)
    offset = _int(body, "offset", 0)
    if limit <= 0 or offset < 0:
        raise BadRequest("limit must be positive and offset not negative.")
    limit = min(limit, MAX_LIMIT)

    today = sb.as_of.date()
    multi = len(ranges) > 1
    out_dims = [*dims, "dateRange"] if multi else dims
    dim_sql = [DIMENSIONS[d] for d in dims]
    met_sql = [METRICS[m] for m in mets]
    ref = sb.store.table(tenant_id, "ga4", "report_rows")
    if ref is None:
        raise BadRequest("No GA4 data for this property.")
    parts = []
    params: list[Any] = []
    for i, r in enumerate(ranges):
        start = _day(str(r.get("startDate", "")), today)
        end = _day(str(r.get("endDate", "")), today)
        if end < start:
            raise BadRequest("The end date of a date range must not be before its start date.")
        label = r.get("name") or f"date_range_{i}"
        select = [f"{s} AS d{j}" for j, s in enumerate(dim_sql)]
        if multi:
            select.append(f"'{label.replace(chr(39), '')}' AS d{len(dim_sql)}")
        select += [f"{s} AS m{j}" for j, s in enumerate(met_sql)]
        group = (
            f" GROUP BY {', '.join(str(k + 1) for k in range(len(out_dims)))}" if out_dims else ""
        )
        parts.append(f"SELECT {', '.join(select)} FROM {ref.sql} WHERE date BETWEEN ? AND ?{group}")
        params += [start.strftime("%Y%m%d"), end.strftime("%Y%m%d")]
    union = " UNION ALL ".join(parts)

    order = []
    for ob in body.get("orderBys") or []:
        desc = " DESC" if ob.get("desc") else ""
        if "dimension" in ob:
            name = ob["dimension"].get("dimensionName")
            if name not in out_dims:
                raise BadRequest(f"orderBys dimension {name} is not in the request's dimensions.")
            order.append(f"d{out_dims.index(name)}{desc}")
        elif "metric" in ob:
            name = ob["metric"].get("metricName")
            if name not in mets:
                raise BadRequest(f"orderBys metric {name} is not in the request's metrics.")
            order.append(f"m{mets.index(name)}{desc}")
        else:
            raise BadRequest("The sandbox supports dimension and metric orderBys only.")
    order += [f"d{j}" for j in range(len(out_dims))]
    order_sql = f" ORDER BY {', '.join(order)}" if order else ""
    total = sb.store.query(f"SELECT count(*) FROM ({union})", params)[0][0]
    rows = sb.store.query(
        f"SELECT * FROM ({union}){order_sql} LIMIT ? OFFSET ?", [*params, limit, offset]
    )

    report: dict[str, Any] = {
        "dimensionHeaders": [{"name": d} for d in out_dims],
        "metricHeaders": [{"name": m, "type": "TYPE_INTEGER"} for m in mets],
    }
    nd = len(out_dims)
    if rows:
        report["rows"] = [
            {
                "dimensionValues": [{"value": str(v)} for v in row[:nd]],
                "metricValues": [{"value": str(int(v or 0))} for v in row[nd:]],
            }
            for row in rows
        ]
    if total:
        report["rowCount"] = total
    profile = sb.profile(tenant_id)
    report["metadata"] = {
        "currencyCode": profile["currency"].upper(),
        "timeZone": profile["timezone"],
    }
    if body.get("returnPropertyQuota"):
        report["propertyQuota"] = {
            "tokensPerDay": {"consumed": 1, "remaining": 199_999},
            "tokensPerHour": {"consumed": 1, "remaining": 39_999},
            "concurrentRequests": {"consumed": 0, "remaining": 10},
        }
    report["kind"] = "analyticsData#runReport"
    return report


def register(app: FastAPI, sb: Sandbox) -> None:
    property_of = {t: c["ga4"]["property_id"] for t, c in sb.keys.credentials.items() if "ga4" in c}
    by_email = {
        c["ga4"].get("client_email"): t for t, c in sb.keys.credentials.items() if "ga4" in c
    }
    challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}

    @app.post("/ga4/v1beta/properties/{property_id}:runReport")
    async def run_report(request: Request, property_id: str) -> Response:
        check = sb.keys.check("ga4", bearer(request))
        if check.state is KeyState.MISSING:
            return json_response(
                google_error(
                    401,
                    f"Request is missing required authentication credential. {AUTH_HELP}",
                    "UNAUTHENTICATED",
                    "CREDENTIALS_MISSING",
                ),
                401,
                challenge,
            )
        if check.state is not KeyState.OK or check.tenant_id is None:
            reason = (
                "ACCESS_TOKEN_EXPIRED"
                if check.state is KeyState.EXPIRED
                else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
            )
            return json_response(
                google_error(
                    401,
                    f"Request had invalid authentication credentials. {AUTH_HELP}",
                    "UNAUTHENTICATED",
                    reason,
                ),
                401,
                {"WWW-Authenticate": challenge["WWW-Authenticate"] + ', error="invalid_token"'},
            )
        if property_of.get(check.tenant_id) != property_id:
            return json_response(
                google_error(
                    403,
                    "User does not have sufficient permissions for this property. To learn "
                    "more about Property ID, see https://developers.google.com/analytics/"
                    "devguides/reporting/data/v1/property-id.",
                    "PERMISSION_DENIED",
                ),
                403,
            )
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            report = await run_in_threadpool(build_report, sb, check.tenant_id, body)
        except json.JSONDecodeError as exc:
            return json_response(
                google_error(400, f"Invalid JSON payload received. {exc}", "INVALID_ARGUMENT"), 400
            )
        except BadRequest as exc:
            return json_response(google_error(400, str(exc), "INVALID_ARGUMENT"), 400)
        return json_response(report)

    @app.post("/ga4/token")
    async def token(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or assertion.count(".") != 2:
            return json_response(
                {
                    "error": "invalid_request",
                    "error_description": "Invalid grant_type or assertion.",
                },
                400,
            )
        try:
            claims_b64 = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
        except ValueError:
            return json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400
            )
        tenant_id = by_email.get(claims.get("iss")) if isinstance(claims, dict) else None
        if tenant_id is None:
            return json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400
            )
        return json_response(
            {
                "access_token": sb.keys.credentials[tenant_id]["ga4"]["secret"],
                "expires_in": 3599,
                "token_type": "Bearer",
            }
        )
