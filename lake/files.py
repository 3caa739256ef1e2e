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
