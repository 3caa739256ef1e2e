"""A serving table declared once: the contract both serving stores build from.

A mart reaches the API through one of these. Postgres builds its COPY lists and
checks its migrated table against it, the embedded store writes its Parquet files
with its Arrow schema, the Dagster publish asset and the mart reader are made per
contract. Adding a mart to serving is a contract, a dbt model and a route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from core.tenancy import InvalidTenantId, check_tenant_id

PUBLISHED_AT = "published_at"
"""The column every serving table adds to its mart's columns: when the row went live."""


class ContractError(ValueError):
    """The table handed to publish does not satisfy its serving contract."""


RowRule = Callable[[pa.Table], None]
"""Raises ContractError for rows the table must never hold (called on conformed rows)."""


@dataclass(frozen=True)
class TableContract:
    """One serving table: its mart, columns, key, order and row rules.

    ``schema`` lists the mart's columns in the serving table's order (``tenant_id``
    first); non-nullable fields are required. ``primary_key`` is unique per tenant
    (it starts with ``tenant_id``). ``order_by`` is the order the API pages in, a
    leading ``-`` meaning descending; it must end in a unique column so keyset
    paging is total.
    """

    name: str
    mart: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    order_by: tuple[str, ...]
    row_rules: tuple[RowRule, ...] = field(default=())
    description: str = ""
    nulls_sort_as: tuple[tuple[str, object], ...] = ()
    """For a nullable order column, the value its nulls sort as, e.g. ``(("score", -1),)``:
    the order (and so keyset paging) stays total, the same in SQL (``COALESCE``) and in
    the embedded reader's Python sort keys."""

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        if self.schema.names[:1] != ["tenant_id"] or self.primary_key[:1] != ("tenant_id",):
            raise ValueError(f"{self.name}: tenant_id must lead the columns and the primary key")
        unknown = {c for c in (*self.primary_key, *self.order_columns) if c not in names}
        if unknown:
            raise ValueError(f"{self.name}: unknown columns {sorted(unknown)}")
        null_columns = {c for c, _ in self.nulls_sort_as}
        if not null_columns <= set(self.order_columns):
            raise ValueError(f"{self.name}: nulls_sort_as names a column it does not order by")
        nullable_order = {
            c for c in self.order_columns if self.schema.field(c).nullable
        } - null_columns
        if nullable_order:
            raise ValueError(
                f"{self.name}: order columns {sorted(nullable_order)} may be null;"
                " give them a nulls_sort_as value"
            )
        if PUBLISHED_AT in names:
            raise ValueError(f"{self.name}: {PUBLISHED_AT} is added by serving, not the mart")

    @property
    def columns(self) -> tuple[str, ...]:
        """The mart's columns, in serving order."""
        return tuple(self.schema.names)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if not f.nullable)

    @property
    def served_columns(self) -> tuple[str, ...]:
        """What the serving table holds: the mart columns plus ``published_at``."""
        return (*self.columns, PUBLISHED_AT)

    @property
    def served_schema(self) -> pa.Schema:
        return self.schema.append(
            pa.field(PUBLISHED_AT, pa.timestamp("us", tz="UTC"), nullable=False)
        )

    @property
    def order_columns(self) -> tuple[str, ...]:
        return tuple(c.lstrip("-") for c in self.order_by)

    def descending(self, column: str) -> bool:
        return f"-{column}" in self.order_by

    def null_sorts_as(self, column: str) -> object:
        """The value a null of order column ``column`` sorts as (None: never null)."""
        return dict(self.nulls_sort_as).get(column)

    def order_values(self, row: dict[str, object]) -> tuple[object, ...]:
        """A row's position in ``order_by``, nulls replaced: what a cursor encodes."""
        return tuple(
            self.null_sorts_as(c) if row[c] is None else row[c] for c in self.order_columns
        )

    def conform(self, tenant_id: str, table: pa.Table | pa.RecordBatchReader) -> pa.Table:
        """Return ``table`` cast to ``schema`` after checking every rule; ContractError otherwise.

        Accepts what the warehouses hand back: DuckDB's ``.arrow()`` gives a
        RecordBatchReader, ``pa.Table.from_pylist`` over Postgres rows gives int64
        integers and, for zero rows, a table with no columns at all. Extra columns
        are dropped: serving exposes a fixed shape, not whatever the mart grew.
        Checked before anything is written, so a bad dbt run fails at the door
        instead of half-replacing a tenant.
        """
        try:
            check_tenant_id(tenant_id)
        except InvalidTenantId as exc:
            raise ContractError(str(exc)) from None
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        if table.num_rows == 0 and table.num_columns == 0:
            return self.schema.empty_table()

        missing = [c for c in self.columns if c not in table.column_names]
        if missing:
            raise ContractError(f"{self.name} is missing columns: {', '.join(missing)}")

        columns = []
        for fld in self.schema:
            column = table.column(fld.name)
            if pa.types.is_timestamp(column.type) and column.type.tz is None:
                # A naive timestamp from the warehouse is UTC by the lake contract.
                column = pc.assume_timezone(column, "UTC")
            try:
                columns.append(column.cast(fld.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ContractError(
                    f"{self.name}: column {fld.name!r} cannot be read as {fld.type}: {exc}"
                ) from exc
        conformed = pa.Table.from_arrays(columns, schema=self.schema.with_metadata(None))
        if conformed.num_rows:
            self._check_rows(tenant_id, conformed)
        return conformed

    def _check_rows(self, tenant_id: str, table: pa.Table) -> None:
        for name in self.required:
            if table.column(name).null_count:
                raise ContractError(f"column {name!r} has nulls but is required")

        # Never publish one tenant's rows under another tenant's name.
        tenants = table["tenant_id"]
        other = pc.unique(pc.filter(tenants, pc.not_equal(tenants, tenant_id)))
        if len(other):
            raise ContractError(
                f"publishing tenant {tenant_id!r} but the table holds rows of "
                f"{sorted(other.to_pylist())[:5]}"
            )

        key = [c for c in self.primary_key if c != "tenant_id"]
        if key and table.group_by(key).aggregate([]).num_rows != table.num_rows:
            counts = table.group_by(key).aggregate([([], "count_all")])
            dupes = counts.filter(pc.greater(counts["count_all"], 1)).select(key).to_pylist()[:5]
            raise ContractError(
                f"{', '.join(key)} is not unique within the tenant, e.g. "
                f"{[tuple(d.values()) if len(d) > 1 else next(iter(d.values())) for d in dupes]}"
            )

        for rule in self.row_rules:
            rule(table)
