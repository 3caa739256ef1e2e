"""What the source checks read: one tenant's lake table, declared columns only,
in chunks of bounded rows, once per check run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from connectors.landing import TableSpec, table_dir
from core.settings import Settings
from lake.files import LakePath, parquet_file
from quality.source_suites import checked_columns


def _lake_files(settings: Settings, spec: TableSpec, tenant_id: str) -> list[LakePath]:
    folder = table_dir(settings, spec.source, spec.name, tenant_id)
    return sorted(folder.glob("*=*/part.parquet")) if folder.exists() else []


def _as_declared(part: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``part`` with every column of ``schema`` (a column its file lacks reads as
    null), in the schema's order. The file's own types are kept: a column whose
    files disagree is what the type expectation is there to see."""
    table = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(schema.names)


def read_lake_columns(
    settings: Settings, spec: TableSpec, tenant_id: str, columns: Sequence[str] | None = None
) -> pa.Table:
    """The tenant's landed rows of ``spec``, its declared columns (or only
    ``columns`` of them); empty, with those columns, when nothing landed."""
    schema = checked_columns(spec)
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    parts = []
    for path in _lake_files(settings, spec, tenant_id):
        handle = parquet_file(path)
        present = [n for n in schema.names if n in handle.schema_arrow.names]
        parts.append(_as_declared(handle.read(columns=present), schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts, promote_options="permissive")


def lake_column_chunks(
    settings: Settings, spec: TableSpec, tenant_id: str, rows: int
) -> Iterator[pa.Table]:
    """The tenant's landed rows of ``spec``, declared columns only, as tables of at
    most ``rows`` rows, in file order (the order ``read_lake_columns`` gives): what
    one GX validation holds, so a check's memory stays bounded however much a
    tenant has landed. Nothing when nothing landed."""
    schema = checked_columns(spec)
    held: list[pa.Table] = []
    count = 0
    for path in _lake_files(settings, spec, tenant_id):
        handle = parquet_file(path)
        present = [n for n in schema.names if n in handle.schema_arrow.names]
        for batch in handle.iter_batches(batch_size=rows, columns=present):
            part = _as_declared(batch, schema)
            while part.num_rows:
                take = part.slice(0, rows - count)
                held.append(take)
                count += take.num_rows
                part = part.slice(take.num_rows)
                if count == rows:
                    yield pa.concat_tables(held, promote_options="permissive")
                    held, count = [], 0
    if held:
        yield pa.concat_tables(held, promote_options="permissive")


def lake_row_count(settings: Settings, spec: TableSpec, tenant_id: str) -> int:
    """How many rows the tenant has landed of ``spec``, from the files' footers."""
    return sum(parquet_file(p).metadata.num_rows for p in _lake_files(settings, spec, tenant_id))
