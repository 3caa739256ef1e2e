"""Saleor over GraphQL: orders, order lines, products, variants.

Relay connections (``first``/``after``, ``pageInfo { hasNextPage endCursor }``)
sorted by ``LAST_MODIFIED_AT`` ascending and filtered by ``updatedAt >= mark``.
Saleor's cursor encodes the sort key and the primary key, so a record updated
while the window is read moves behind the cursor and is read again later,
never skipped. The cursor saved after each page is the page's ``endCursor``
with the window's lower bound; when the window ends the high-water mark
becomes the newest ``updatedAt`` seen.

Order lines have no root field in Saleor: they are read through ``orders``
(with their own cursor, as their own table), each line carrying its order's
``order_id``, ``order_created`` (its partition date) and ``order_updated_at``.

GraphQL answers errors with HTTP 200 and an ``errors`` list: an expired or
refused token becomes a ``CredentialError``, anything else a
``SourceRequestError`` with Saleor's messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pyarrow as pa

from connectors.connector import Credential, Page, ReadContext, SourceDef
from connectors.http_client import (
    CredentialError,
    MalformedPage,
    SourceClient,
    SourceRequestError,
)
from connectors.landing import TableSpec
from connectors.sources._common import in_window, require_list, require_objects, secret_value

NAME = "saleor"
PAGE_SIZE = 100  # Saleor's limit on `first`
CREDENTIAL_CODES = frozenset(
    {"PermissionDenied", "ExpiredSignatureError", "InvalidTokenError", "JSONWebTokenError"}
)

MONEY = "currency amount"
TAXED = f"currency gross {{ {MONEY} }} net {{ {MONEY} }} tax {{ {MONEY} }}"
LINE_FIELDS = f"""
    id productName variantName productSku productVariantId quantity quantityFulfilled
    variant {{ id sku name product {{ id name }} }}
    unitPrice {{ {TAXED} }} undiscountedUnitPrice {{ {TAXED} }} totalPrice {{ {TAXED} }}
    taxRate isShippingRequired
"""
ADDRESS = (
    "firstName lastName companyName streetAddress1 streetAddress2 city postalCode "
    "country { code } phone"
)
ORDER_FIELDS = f"""
    id number created updatedAt status origin paymentStatus chargeStatus authorizeStatus
    isPaid userEmail user {{ id email }} channel {{ id slug name currencyCode }}
    languageCodeEnum billingAddress {{ {ADDRESS} }} shippingAddress {{ {ADDRESS} }}
    shippingMethodName shippingPrice {{ {TAXED} }} subtotal {{ {TAXED} }} total {{ {TAXED} }}
    totalCharged {{ {MONEY} }} customerNote metadata {{ key value }}
    lines {{ {LINE_FIELDS} }}
"""
VARIANT_FIELDS = f"""
    id name sku created updatedAt trackInventory quantityLimitPerCustomer
    weight {{ unit value }}
    attributes {{ attribute {{ id name slug }} values {{ name slug }} }}
    channelListings {{ channel {{ id slug name currencyCode }} price {{ {MONEY} }}
                       costPrice {{ {MONEY} }} }}
    stocks {{ warehouse {{ id name }} quantity quantityAllocated }}
    metadata {{ key value }}
"""
PRODUCT_FIELDS = f"""
    id name slug description seoTitle seoDescription
    productType {{ id name }} category {{ id name slug }}
    created updatedAt rating
    channelListings {{ channel {{ id slug name currencyCode }} isPublished publishedAt
                       visibleInListings availableForPurchaseAt }}
    thumbnail {{ url alt }} metadata {{ key value }}
    variants {{ {VARIANT_FIELDS} }}
"""


@dataclass(frozen=True)
class Root:
    field: str
    node_fields: str


ROOTS: dict[str, Root] = {
    "orders": Root("orders", ORDER_FIELDS),
    "order_lines": Root("orders", "id created updatedAt lines { " + LINE_FIELDS + " }"),
    "products": Root("products", PRODUCT_FIELDS),
    "variants": Root("productVariants", VARIANT_FIELDS + " product { id name }"),
}


def _spec(table: str, *required: str, date_field: str = "created", **columns: pa.DataType):
    return TableSpec(
        source=NAME,
        name=table,
        date_field=date_field,
        date_format="iso",
        primary_key=("id",),
        required=required,
        columns={"id": pa.string(), **columns},
    )


TABLES: dict[str, TableSpec] = {
    "orders": _spec(
        "orders",
        "updatedAt",
        "total",
        created=pa.string(),
        updatedAt=pa.string(),
        number=pa.string(),
        status=pa.string(),
        userEmail=pa.string(),
    ),  # fmt: skip
    "order_lines": _spec(
        "order_lines",
        "order_id",
        "quantity",
        date_field="order_created",
        order_id=pa.string(),
        order_created=pa.string(),
        quantity=pa.int64(),
        productSku=pa.string(),
    ),  # fmt: skip
    "products": _spec(
        "products",
        "updatedAt",
        "name",
        created=pa.string(),
        updatedAt=pa.string(),
        name=pa.string(),
        slug=pa.string(),
    ),  # fmt: skip
    "variants": _spec(
        "variants",
        "updatedAt",
        "sku",
        created=pa.string(),
        updatedAt=pa.string(),
        sku=pa.string(),
        name=pa.string(),
    ),  # fmt: skip
}


def credential(secret: str) -> Credential:
    token = secret_value(secret, "token", "app_token", "access_token")
    return Credential(headers={"Authorization": f"Bearer {token}"}, secrets=[token])


def query(root: Root) -> str:
    return (
        f"query Page($first: Int!, $after: String, $since: DateTime) {{\n"
        f"  {root.field}(first: $first, after: $after,\n"
        f"      filter: {{updatedAt: {{gte: $since}}}},\n"
        f"      sortBy: {{field: LAST_MODIFIED_AT, direction: ASC}}) {{\n"
        f"    pageInfo {{ hasNextPage endCursor }}\n"
        f"    edges {{ node {{ {' '.join(root.node_fields.split())} }} }}\n"
        f"  }}\n}}"
    )


def check_connection(field: str) -> Any:
    def check(data: Any) -> None:
        if not isinstance(data, Mapping):
            raise MalformedPage(f"expected a JSON object (GraphQL), got {type(data).__name__}")
        if data.get("errors"):
            if not isinstance(data["errors"], list):
                raise MalformedPage("'errors' is not a list (GraphQL)")
            return  # a GraphQL error is an answer, not a broken page
        body = data.get("data")
        conn = body.get(field) if isinstance(body, Mapping) else None
        if not isinstance(conn, Mapping):
            raise MalformedPage(f"'data.{field}' is missing (GraphQL)")
        edges = require_list(conn, "edges", where=f" (data.{field})")
        require_objects(edges, "edges")
        if not all(isinstance(e.get("node"), Mapping) for e in edges):
            raise MalformedPage(f"an edge of data.{field} has no node object")
        info = conn.get("pageInfo")
        if not isinstance(info, Mapping) or not isinstance(info.get("hasNextPage"), bool):
            raise MalformedPage(f"'data.{field}.pageInfo.hasNextPage' is missing")

    return check


def raise_errors(client: SourceClient, errors: list[Any], what: str) -> None:
    def code(e: Any) -> str:
        ext = e.get("extensions") if isinstance(e, Mapping) else None
        exc = ext.get("exception") if isinstance(ext, Mapping) else None
        found = (exc or {}).get("code") or (ext or {}).get("code")
        return str(found or "")

    codes = {code(e) for e in errors}
    messages = "; ".join(
        str(e.get("message")) if isinstance(e, Mapping) else str(e) for e in errors[:3]
    )
    if codes & CREDENTIAL_CODES:
        raise CredentialError(
            f"saleor refused the credential of tenant {client.tenant_id!r} on {what} "
            f"({', '.join(sorted(codes & CREDENTIAL_CODES))}): the stored saleor app token is "
            f"wrong, expired or lacks a permission; set a new one with "
            f"`bizos credentials set --tenant {client.tenant_id} --source saleor`",
            source=NAME,
            tenant_id=client.tenant_id,
        )
    raise SourceRequestError(
        client.mask(
            f"saleor answered {what} for tenant {client.tenant_id!r} with errors: {messages}"
        ),
        source=NAME,
        tenant_id=client.tenant_id,
    )


def order_lines(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    lines = order.get("lines")
    if not isinstance(lines, list):
        return []
    return [
        {
            **line,
            "order_id": order.get("id"),
            "order_created": order.get("created"),
            "order_updated_at": order.get("updatedAt"),
        }
        for line in lines
        if isinstance(line, Mapping)
    ]


def read(ctx: ReadContext) -> Iterator[Page]:
    root = ROOTS[ctx.spec.name]
    high_water = None if ctx.full_refresh else ctx.cursor.get("high_water")
    window = ctx.cursor.get("window")
    if ctx.window is not None:
        # A reload: what was updated since the window's start. The API has no
        # upper bound; nodes come in updatedAt order, so the read stops past it.
        since = ctx.window[0].astimezone(UTC).isoformat(timespec="microseconds")
        window = {"since": since, "after": None, "max_updated": None}
    elif window is None or (ctx.full_refresh and window.get("since") is not None):
        window = {"since": high_water, "after": None, "max_updated": None}
    text = query(root)
    first = min(ctx.page_size, PAGE_SIZE)
    while True:
        variables = {"first": first, "after": window["after"], "since": window["since"]}
        data = ctx.client.post_json(
            "graphql/",
            body={"query": text, "variables": variables, "operationName": "Page"},
            check=check_connection(root.field),
        )
        what = ctx.client.describe("POST", f"graphql/ {root.field}", variables)
        if data.get("errors"):
            raise_errors(ctx.client, data["errors"], what)
        conn = data["data"][root.field]
        nodes = [edge["node"] for edge in conn["edges"]]
        past = False
        if ctx.window is not None:
            nodes, past = in_window(nodes, "updatedAt", ctx.window)
        updated = [n["updatedAt"] for n in nodes if isinstance(n.get("updatedAt"), str)]
        # Saleor writes DateTimes in one form (UTC, microseconds): they sort as text.
        newest = max(updated, default=None)
        if newest is not None and (window["max_updated"] is None or newest > window["max_updated"]):
            window = {**window, "max_updated": newest}
        records = (
            [line for node in nodes for line in order_lines(node)]
            if ctx.spec.name == "order_lines"
            else nodes
        )
        info = conn["pageInfo"]
        if not info["hasNextPage"] or not nodes or past:
            old = ctx.cursor.get("high_water")
            candidates = [v for v in (old, window["max_updated"]) if v is not None]
            done = {"high_water": max(candidates) if candidates else None, "window": None}
            yield Page(records, what, done)
            return
        if not isinstance(info.get("endCursor"), str):
            raise SourceRequestError(
                f"saleor said there is a next page of {root.field} but gave no endCursor",
                source=NAME,
                tenant_id=ctx.client.tenant_id,
            )
        window = {**window, "after": info["endCursor"]}
        yield Page(records, what, {"high_water": ctx.cursor.get("high_water"), "window": window})


SOURCE = SourceDef(name=NAME, tables=TABLES, credential=credential, read=read, page_size=PAGE_SIZE)
