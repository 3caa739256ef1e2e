"""What the source checks read: one tenant's lake table, declared columns only,
once per check run."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.landing import TableSpec, table_dir
from core.settings import Settings
from quality.source_suites import checked_columns


def read_lake_columns(settings: Settings, spec: TableSpec, tenant_id: str) -> pa.Table:
    """The tenant's landed rows of ``spec``, its declared columns only; empty (with
    the declared columns) when nothing landed. A column a file lacks reads as null."""
    schema = checked_columns(spec)
    folder = table_dir(settings, spec.source, spec.name, tenant_id)
    files = sorted(folder.glob("*=*/part.parquet")) if folder.exists() else []
    parts = []
    for path in files:
        handle = pq.ParquetFile(path)
        present = [n for n in schema.names if n in handle.schema_arrow.names]
        part = handle.read(columns=present)
        for name in schema.names:
            if name not in present:
                part = part.append_column(name, pa.nulls(part.num_rows, schema.field(name).type))
        # Keep the file's own types: a column whose files disagree is what the
        # type expectation is there to see.
        parts.append(part.select(schema.names))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts, promote_options="permissive")
