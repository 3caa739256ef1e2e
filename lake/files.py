"""The Parquet lake: where each partition lives and how it is replaced.

A partition is one file, written beside its final name and renamed over it, so a
reader (DuckDB, dbt, a re-run) sees the old file or the new one, never half of
one, and a re-run replaces instead of appending.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def partition_dir(root: Path, *parts: str, **keys: str) -> Path:
    """``root/part/.../key=value/...``: Hive-style so engines can prune on keys."""
    path = root.joinpath(*parts)
    for key, value in keys.items():
        if not value or "/" in value or value in {".", ".."}:
            raise ValueError(f"invalid partition value for {key}: {value!r}")
        path = path / f"{key}={value}"
    return path


def write_partition(table: pa.Table, path: Path) -> int:
    """Atomically replace ``path`` with ``table``; returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def read_partition(path: Path) -> pa.Table | None:
    return pq.read_table(path) if path.exists() else None


class PartitionWriter:
    """Streams batches into a new partition file that replaces ``path`` on ``commit``.

    For partitions too large to hold as one table: memory stays at one batch, and
    readers still see the old file or the new one. Without a commit (an error,
    an early return) the new file is removed and the old one stays.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        self.rows = 0
        self._tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._tmp, schema, compression="zstd"
        )

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if self._writer is None:
            raise RuntimeError(f"{self.path}: written after commit or discard")
        if data.num_rows:
            table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
            self._writer.write_table(table.cast(self.schema))
            self.rows += data.num_rows

    def close(self) -> None:
        """Finish the new file (so it can be read back) without publishing it."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def written_path(self) -> Path:
        return self._tmp

    def commit(self) -> int:
        """Publish the new file over ``path``; returns its size in bytes."""
        self.close()
        with open(self._tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self._tmp, self.path)
        return self.path.stat().st_size

    def discard(self) -> None:
        self.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
