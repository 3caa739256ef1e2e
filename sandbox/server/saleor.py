"""Saleor's GraphQL API under ``/saleor``: ``POST /graphql/``.

Root fields ``orders``, ``products`` and ``productVariants`` as Relay
connections: ``first`` (1-100, required) and ``after``; ``filter: {updatedAt:
{gte, lte}}`` (and ``created: {gte, lte}`` dates on orders); ``sortBy: {field,
direction}`` (``NUMBER`` for orders, ``CREATED_AT``/``CREATION_DATE``,
``LAST_MODIFIED_AT``; default: by primary key ascending). The connection
honours its selection (``edges { node cursor }``, ``pageInfo { hasNextPage
endCursor ... }``, ``totalCount``, ``__typename``, aliases, fragments); a node
always comes whole, with every field of its documented shape. Errors are
GraphQL ``errors`` with HTTP 200, as Saleor answers; a missing or unknown token
is a ``PermissionDenied`` error, an expired one ``ExpiredSignatureError``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from sandbox.server.context import KeyState, Sandbox, bearer, json_response, parse_time
from sandbox.server.graphql import (
    Field,
    GraphQLError,
    coerce_variables,
    collect_fields,
    parse,
    pick_operation,
    resolve,
)

MAX_FIRST = 100


@dataclass(frozen=True)
class Root:
    table: str
    type_name: str
    permission: str
    sorts: dict[str, str]
    filters: dict[str, str]  # filter name -> time column
    date_filters: frozenset[str] = frozenset()


ROOTS = {
    "orders": Root(
        "orders",
        "Order",
        "MANAGE_ORDERS",
        {
            "NUMBER": "pk",
            "CREATED_AT": "created",
            "CREATION_DATE": "created",
            "LAST_MODIFIED_AT": "updated",
        },
        {"updatedAt": "updated", "created": "created"},
        frozenset({"created"}),
    ),
    "products": Root(
        "products",
        "Product",
        "MANAGE_PRODUCTS",
        {"CREATED_AT": "created", "LAST_MODIFIED_AT": "updated", "LAST_MODIFIED": "updated"},
        {"updatedAt": "updated"},
    ),
    "productVariants": Root(
        "variants",
        "ProductVariant",
        "MANAGE_PRODUCTS",
        {"CREATED_AT": "created", "LAST_MODIFIED_AT": "updated", "LAST_MODIFIED": "updated"},
        {"updatedAt": "updated"},
    ),
}
ARGS = {"first", "after", "last", "before", "filter", "sortBy", "channel"}


class Raw(str):
    """JSON text to embed as is."""


def dump(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def error_entry(message: str, code: str, path: list[str] | None = None, **extra: Any) -> dict:
    entry: dict[str, Any] = {"message": message}
    if path:
        entry["path"] = path
    entry["extensions"] = {"exception": {"code": code, **extra}}
    return entry


def error_body(status: int) -> dict[str, Any]:
    messages = {429: "Too many requests.", 503: "Service unavailable."}
    return {
        "errors": [
            {
                "message": messages.get(status, "Internal Server Error"),
                "extensions": {"exception": {"code": "InternalServerError"}},
            }
        ]
    }


def _cursor(key: int, pk: int) -> str:
    return base64.b64encode(json.dumps([str(key), str(pk)]).encode()).decode()


def _uncursor(text: str) -> tuple[int, int]:
    try:
        key, pk = json.loads(base64.b64decode(text.encode(), validate=True))
        return int(key), int(pk)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor: {text!r}.") from exc


def resolve_connection(
    sb: Sandbox, tenant_id: str, field: Field, root: Root, args: dict[str, Any], fragments: dict
) -> dict[str, Any]:
    unknown = sorted(set(args) - ARGS)
    if unknown:
        raise GraphQLError(f'Unknown argument "{unknown[0]}" on field "Query.{field.name}".')
    if args.get("last") is not None or args.get("before") is not None:
        raise GraphQLError("The sandbox pages forward only: use first and after.")
    first = args.get("first")
    if first is None:
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the "
            f"`{field.name}` connection."
        )
    if not isinstance(first, int) or first < 0:
        raise GraphQLError("Argument `first` must be a non-negative integer.")
    if first > MAX_FIRST:
        raise GraphQLError(
            f"Requesting {first} records on the `{field.name}` connection exceeds the "
            f"`first` limit of {MAX_FIRST} records."
        )
    channel = args.get("channel")
    if channel not in (None, "default-channel"):
        raise GraphQLError(f"Channel with 'default-channel' slug only; got {channel!r}.")

    where: list[str] = []
    params: list[Any] = []
    for name, rng in (args.get("filter") or {}).items():
        if name not in root.filters:
            raise GraphQLError(
                f'Field "{name}" is not defined by type "{root.type_name}FilterInput" '
                "in the sandbox."
            )
        if rng is None:
            continue
        col = root.filters[name]
        for op, value in rng.items():
            if op not in ("gte", "lte") or value is None:
                if value is None:
                    continue
                raise GraphQLError(f'Field "{op}" is not defined by the range input of {name}.')
            try:
                ts = parse_time(str(value))
            except ValueError as exc:
                raise GraphQLError(f"Invalid date/time {value!r} in filter {name}.") from exc
            if op == "lte" and name in root.date_filters and len(str(value)) == 10:
                ts += 86_399  # a date's upper bound takes in the whole day
            where.append(f"{col} {'>=' if op == 'gte' else '<='} ?")
            params.append(ts)

    sort_by = args.get("sortBy") or {}
    sort_field = sort_by.get("field")
    if sort_field is not None and sort_field not in root.sorts:
        raise GraphQLError(
            f"Sorting {field.name} by {sort_field} is not supported by the sandbox; use one "
            f"of {', '.join(root.sorts)}."
        )
    key = root.sorts[sort_field] if sort_field else "pk"
    desc = str(sort_by.get("direction") or "ASC") == "DESC"
    ref = sb.store.table(tenant_id, "saleor", root.table)
    if ref is None:
        raise GraphQLError(f"No {field.name} in this store.")

    base_where = " AND ".join(where) or "true"
    page_where, page_params = base_where, list(params)
    after = args.get("after")
    if after:
        k, pk = _uncursor(str(after))
        cmp = "<" if desc else ">"
        page_where += f" AND ({key} {cmp} ? OR ({key} = ? AND pk {cmp} ?))"
        page_params += [k, k, pk]
    direction = "DESC" if desc else "ASC"
    rows = sb.store.query(
        f"SELECT payload, {key}, pk FROM {ref.sql} WHERE {page_where} "
        f"ORDER BY {key} {direction}, pk {direction} LIMIT ?",
        [*page_params, first + 1],
    )
    has_next = len(rows) > first
    rows = rows[:first]
    cursors = [_cursor(k, pk) for _payload, k, pk in rows]

    out: dict[str, Any] = {}
    for sel in collect_fields(field.selections or [], fragments):
        if sel.name == "__typename":
            out[sel.key] = f"{root.type_name}CountableConnection"
        elif sel.name == "totalCount":
            out[sel.key] = sb.store.query(
                f"SELECT count(*) FROM {ref.sql} WHERE {base_where}", params
            )[0][0]
        elif sel.name == "pageInfo":
            info = {
                "hasNextPage": has_next,
                "hasPreviousPage": bool(after),
                "startCursor": cursors[0] if cursors else None,
                "endCursor": cursors[-1] if cursors else None,
                "__typename": "PageInfo",
            }
            page_info: dict[str, Any] = {}
            for s in collect_fields(sel.selections or [], fragments):
                if s.name not in info:
                    raise GraphQLError(f'Cannot query field "{s.name}" on type "PageInfo".')
                page_info[s.key] = info[s.name]
            out[sel.key] = page_info
        elif sel.name == "edges":
            edge_fields = collect_fields(sel.selections or [], fragments)
            edges = []
            for (payload, _k, _pk), cur in zip(rows, cursors, strict=True):
                edge: dict[str, Any] = {}
                for s in edge_fields:
                    if s.name == "node":
                        edge[s.key] = Raw(payload)
                    elif s.name == "cursor":
                        edge[s.key] = cur
                    elif s.name == "__typename":
                        edge[s.key] = f"{root.type_name}CountableEdge"
                    else:
                        raise GraphQLError(
                            f'Cannot query field "{s.name}" on type '
                            f'"{root.type_name}CountableEdge".'
                        )
                edges.append(edge)
            out[sel.key] = edges
        else:
            raise GraphQLError(
                f'Cannot query field "{sel.name}" on type "{root.type_name}CountableConnection".'
            )
    return out


def execute(sb: Sandbox, tenant_id: str | None, state: KeyState, body: Any) -> dict[str, Any]:
    """The GraphQL response for one request body (never raises for a bad query)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [error_entry("Must provide a query string.", "GraphQLError")]}
    try:
        doc = parse(body["query"])
        op = pick_operation(doc, body.get("operationName"))
        if op.kind != "query":
            raise GraphQLError(f"The sandbox serves queries only, not a {op.kind}.")
        variables = coerce_variables(op, body.get("variables"))
        roots = collect_fields(op.selections, doc.fragments)
        for f in roots:
            if f.name != "__typename" and f.name not in ROOTS:
                raise GraphQLError(f'Cannot query field "{f.name}" on type "Query".')
    except GraphQLError as exc:
        entry = error_entry(exc.message, "GraphQLError")
        if exc.locations:
            entry["locations"] = exc.locations
        return {"errors": [entry]}

    if state is KeyState.EXPIRED:
        return {"errors": [error_entry("Signature has expired", "ExpiredSignatureError")]}
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for f in roots:
        if f.name == "__typename":
            data[f.key] = "Query"
            continue
        root = ROOTS[f.name]
        if tenant_id is None:
            data[f.key] = None
            errors.append(
                error_entry(
                    "To access this path, you need one of the following permissions: "
                    + root.permission,
                    "PermissionDenied",
                    [f.key],
                    permissions=[root.permission],
                )
            )
            continue
        try:
            args = {k: resolve(v, variables) for k, v in f.arguments.items()}
            data[f.key] = resolve_connection(sb, tenant_id, f, root, args, doc.fragments)
        except GraphQLError as exc:
            data[f.key] = None
            entry = error_entry(exc.message, "GraphQLError", [f.key])
            entry["locations"] = [{"line": f.line, "column": f.column}]
            errors.append(entry)
    result: dict[str, Any] = {"data": data}
    if errors:
        result["errors"] = errors
    return result


def register(app: FastAPI, sb: Sandbox) -> None:
    @app.post("/saleor/graphql/")
    @app.post("/saleor/graphql")
    async def graphql(request: Request) -> Response:
        check = sb.keys.check("saleor", bearer(request))
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError:
            return json_response(
                {"errors": [error_entry("Unable to parse query.", "GraphQLError")]}
            )
        result = await run_in_threadpool(execute, sb, check.tenant_id, check.state, body)
        return json_response(dump(result))
