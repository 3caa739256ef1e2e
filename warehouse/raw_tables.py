"""Load lake tables into the Postgres ``raw`` schema, dbt's sources there.

On the embedded target dbt reads the lake Parquet directly; on Postgres each lake
table ``<source>/<table>`` is copied into ``raw.<source>__<table>``, one tenant at
a time. One loader serves every table, driven by the table's schema:

- The columns come from the Arrow schema of the tenant's lake files (unioned
  across files), after the table's declared columns. The raw table is created
  from them, and a column the lake gains later (provider drift) is added. A
  column whose type drifts is kept as text rather than failing the load.
- A tenant's rows are replaced in one transaction (delete, then ``COPY`` as
  CSV written by Arrow), so dbt never sees a half-loaded tenant and a re-run
  never duplicates. Other tenants' rows are not touched.
- A tenant with no lake files for the table (a source it has not connected)
  still gets the table created from the declared columns, with no rows, so
  dbt's source relation exists.

Postgres ``text`` cannot hold a NUL byte (and ``jsonb`` refuses ``\\u0000``), so
such a value stops the load before anything is written, with an error naming
the table, tenant, lake file and row (and the export file and line when the
row has them).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import sql

from lake.files import LakePath, find, partition_dir, read_parquet

RAW_SCHEMA = "raw"
_COPY_CHUNK = 1 << 20
# A JSON \u0000 escape that is not itself an escaped backslash followed by "u0000".
_JSON_NUL = r"(^|[^\\])(\\\\)*\\u0000"


class RawLoadError(ValueError):
    """A lake row that Postgres cannot store; the message says which and where."""


@dataclass(frozen=True)
class RawTable:
    """One lake table and its raw copy."""

    source: str
    table: str
    declared: pa.Schema
    """Columns every lake file of the table has (tenant_id, the declared provider
    fields, the landing's own); the raw table starts with these."""

    @property
    def name(self) -> str:
        return f"{self.source}__{self.table}"

    @property
    def qualified_name(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"


@dataclass
class RawLoad:
    """What one tenant's load of one table did."""

    table: str
    tenant_id: str
    rows: int = 0
    files: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)


# -- types ---------------------------------------------------------------------------


def pg_type(arrow_type: pa.DataType) -> str:
    """The Postgres column type for an Arrow type (the types the lake writes)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_null(arrow_type):
        return "text"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"  # as format_type spells it
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    raise TypeError(f"no Postgres type mapped for Arrow type {arrow_type}")


def _wider(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type that holds values of both (text when nothing narrower does)."""
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(t(a) for t in numeric) and any(t(b) for t in numeric):
        return pa.float64() if pa.types.is_floating(a) or pa.types.is_floating(b) else pa.int64()
    return pa.string()


def unified_schema(declared: pa.Schema, schemas: Sequence[pa.Schema]) -> pa.Schema:
    """Declared columns first, then every other column in the order files show them."""
    types: dict[str, pa.DataType] = {f.name: f.type for f in declared}
    for schema in schemas:
        for f in schema:
            types[f.name] = _wider(types[f.name], f.type) if f.name in types else f.type
    return pa.schema(
        [(name, pa.string() if pa.types.is_null(t) else t) for name, t in types.items()]
    )


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones null, others cast."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(pc.cast(table.column(f.name), f.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


# -- the lake side -------------------------------------------------------------------


def lake_files(lake_dir: LakePath, source: str, table: str, tenant_id: str) -> list[LakePath]:
    """Every Parquet file of one tenant's table (day partitions or a single file)."""
    folder = partition_dir(lake_dir, source, table, tenant=tenant_id)
    return find(folder, "**/*.parquet")


def check_storable(raw: RawTable, tenant_id: str, path: LakePath, table: pa.Table) -> None:
    """Raise RawLoadError at the first value Postgres cannot store, or a row of
    another tenant (a misplaced file must never publish one tenant's rows as another's)."""
    if "tenant_id" in table.column_names and table.num_rows:
        other = pc.not_equal(table.column("tenant_id"), pa.scalar(tenant_id))
        if pc.any(other).as_py():
            row = pc.index(other, True).as_py()
            raise RawLoadError(
                f"{raw.qualified_name}, tenant {tenant_id}: row {row} of {path} "
                f"belongs to tenant {table.column('tenant_id')[row].as_py()!r}"
            )
    for f in table.schema:
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            continue
        column = table.column(f.name)
        hits = pc.match_substring(column, "\x00")
        what = "a NUL byte"
        if not pc.any(hits).as_py() and f.name == "_raw":
            hits = pc.match_substring_regex(column, _JSON_NUL)
            what = "a \\u0000 escape"
        if not pc.any(hits).as_py():
            continue
        row = pc.index(hits, True).as_py()
        raise RawLoadError(
            f"{raw.qualified_name}, tenant {tenant_id}: column {f.name!r} has {what}, "
            f"which Postgres text cannot hold, at row {row} of {path}"
            f"{_row_origin(table, row)}. Quarantine or clean it upstream and reload."
        )


def _row_origin(table: pa.Table, row: int) -> str:
    """Where the row came from, as far as the row says: export file and line, or its id."""
    names = table.column_names
    if "_source_file" in names and "_source_line" in names:
        file = table.column("_source_file")[row].as_py()
        line = table.column("_source_line")[row].as_py()
        return f" (export file {file}, line {line})"
    if "id" in names:
        return f" (record id {table.column('id')[row].as_py()!r})"
    return ""


def read_tenant(
    lake_dir: LakePath, raw: RawTable, tenant_id: str
) -> tuple[pa.Table, list[LakePath]]:
    """The tenant's rows of the table, in the unified schema, checked storable."""
    files = lake_files(lake_dir, raw.source, raw.table, tenant_id)
    parts = []
    for path in files:
        part = read_parquet(path)
        check_storable(raw, tenant_id, path, part)
        parts.append(part)
    schema = unified_schema(raw.declared, [p.schema for p in parts])
    if not parts:
        return schema.empty_table(), files
    return pa.concat_tables([conform(p, schema) for p in parts]), files


# -- the Postgres side ---------------------------------------------------------------


def _existing_columns(conn: psycopg.Connection, name: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        [RAW_SCHEMA, name],
    ).fetchall()
    return dict(rows)


def ensure_table(
    conn: psycopg.Connection, raw: RawTable, schema: pa.Schema
) -> tuple[pa.Schema, list[str]]:
    """Create the raw table or add the columns it lacks; returns the schema to load
    (a column the table already has as text is loaded as text) and the added names.

    Serialised by an advisory lock held to the end of the (short) transaction,
    so tenants loading at once do not race on CREATE SCHEMA, CREATE TABLE or
    ADD COLUMN; their row swaps then run side by side."""
    target = sql.Identifier(RAW_SCHEMA, raw.name)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('bizos raw schema ddl'))")
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(RAW_SCHEMA)))
    existing = _existing_columns(conn, raw.name)
    if not existing:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type(f.type)))
            for f in schema
        )
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, columns))
        return schema, []
    added = []
    fields = []
    for f in schema:
        wanted = pg_type(f.type)
        have = existing.get(f.name)
        if have is None:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    target, sql.Identifier(f.name), sql.SQL(wanted)
                )
            )
            added.append(f.name)
        elif have != wanted:
            # Drift in a provider field. Values that fit the column load into it
            # (anything into text, integers into double); otherwise the column
            # becomes text, which keeps every value (staging reads undeclared
            # fields from _raw).
            if have == "text" or (have, wanted) == ("double precision", "bigint"):
                f = pa.field(f.name, _ARROW_FOR_PG[have])
            else:
                _to_text(conn, raw, f.name)
                f = pa.field(f.name, pa.string())
        fields.append(f)
    return pa.schema(fields), added


_ARROW_FOR_PG = {"text": pa.string(), "double precision": pa.float64()}


def _to_text(conn: psycopg.Connection, raw: RawTable, column: str) -> None:
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text USING {}::text").format(
                    sql.Identifier(RAW_SCHEMA, raw.name),
                    sql.Identifier(column),
                    sql.Identifier(column),
                )
            )
    except psycopg.errors.FeatureNotSupported as exc:
        # A view (dbt's staging) reads the column: Postgres will not retype it.
        raise RawLoadError(
            f"{raw.qualified_name}: column {column!r} changed type in the lake and a view "
            f"depends on it ({exc.diag.message_primary}); rebuild with the view dropped"
        ) from exc


def _csv_chunks(table: pa.Table) -> list[bytes]:
    buffer = io.BytesIO()
    if table.num_rows:
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    data = buffer.getvalue()
    return [data[i : i + _COPY_CHUNK] for i in range(0, len(data), _COPY_CHUNK)]


def replace_tenant_rows(
    conninfo: str, raw: RawTable, *, tenant_id: str, rows: pa.Table
) -> tuple[int, list[str]]:
    """Swap this tenant's rows of ``raw.<table>`` for ``rows`` in one transaction;
    returns the row count and the columns added to the table."""
    with psycopg.connect(conninfo) as conn:
        with conn.transaction():
            schema, added = ensure_table(conn, raw, rows.schema)
        rows = conform(rows, schema)
        target = sql.Identifier(RAW_SCHEMA, raw.name)
        names = sql.SQL(", ").join(sql.Identifier(n) for n in schema.names)
        with conn.transaction():
            conn.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(target), [tenant_id])
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, names)
            with conn.cursor().copy(copy_sql) as copy:
                for chunk in _csv_chunks(rows):
                    copy.write(chunk)
    return rows.num_rows, added


def load_tenant(conninfo: str, raw: RawTable, *, lake_dir: LakePath, tenant_id: str) -> RawLoad:
    """Mirror one tenant's lake table into ``raw.<source>__<table>``."""
    rows, files = read_tenant(lake_dir, raw, tenant_id)
    count, added = replace_tenant_rows(conninfo, raw, tenant_id=tenant_id, rows=rows)
    return RawLoad(
        table=raw.qualified_name,
        tenant_id=tenant_id,
        rows=count,
        files=[str(f) for f in files],
        columns_added=added,
    )
