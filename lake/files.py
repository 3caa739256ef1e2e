"""The Parquet lake: where each partition lives and how it is replaced.

Everything that writes or reads lake files goes through this module, so the lake
can be a local folder (a ``Path``) or object storage (an ``S3Path``,
``s3://bucket/prefix``) with one code path at the call sites.

A partition is one file, and a reader (DuckDB, dbt, a re-run) sees the old file
or the new one, never half of one; a re-run replaces instead of appending.

- In a folder, the new file is written beside its final name
  (``.<name>.<uuid>.tmp``), fsynced and renamed over it: rename is atomic.
- On S3 rename is a copy, not atomic, but an object written by a single PUT or
  a completed multipart upload appears whole or not at all. So the new file is
  written in full to a local staging file first (``S3Store.staging_dir``: a
  failure while encoding never touches the bucket), then uploaded straight to
  its final key. An upload cut off midway is an incomplete multipart upload,
  which is invisible to readers (a bucket lifecycle rule aborts it).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import overload

import pyarrow as pa
import pyarrow.parquet as pq

from core.settings import Settings
from lake.s3 import S3Path, S3Store, split_s3_url

LakePath = Path | S3Path
"""A lake location: a local path, or an object key (prefix) in a bucket."""


@overload
def partition_dir(root: Path, *parts: str, **keys: str) -> Path: ...
@overload
def partition_dir(root: S3Path, *parts: str, **keys: str) -> S3Path: ...
@overload
def partition_dir(root: LakePath, *parts: str, **keys: str) -> LakePath: ...
def partition_dir(root: LakePath, *parts: str, **keys: str) -> LakePath:
    """``root/part/.../key=value/...``: Hive-style so engines can prune on keys."""
    path = root.joinpath(*parts)
    for key, value in keys.items():
        if not value or "/" in value or value in {".", ".."}:
            raise ValueError(f"invalid partition value for {key}: {value!r}")
        path = path / f"{key}={value}"
    return path


def _staging_file(path: LakePath) -> Path:
    """Where the new file of ``path`` is written before it is published."""
    if isinstance(path, S3Path):
        path.store.staging_dir.mkdir(parents=True, exist_ok=True)
        return path.store.staging_dir / f".{path.name}.{uuid.uuid4().hex}.tmp"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _publish(tmp: Path, path: LakePath) -> int:
    """Make the finished file ``tmp`` the partition at ``path``; returns its size."""
    if isinstance(path, S3Path):
        with pa.memory_map(str(tmp)) as src:
            data = src.read_buffer()  # mapped, not copied: the file may be large
            out = path.fs.open_output_stream(path.key)
            # One write, then close, which completes the upload. No ``with``
            # around the stream: only S3 itself can fail between open and close,
            # and a failed part leaves the stream failed, so close errors
            # without completing the upload and the old object stays.
            out.write(data)
            out.close()
            size = data.size
        tmp.unlink(missing_ok=True)
        return size
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path.stat().st_size


def write_partition(table: pa.Table, path: LakePath) -> int:
    """Atomically replace ``path`` with ``table``; returns the bytes written."""
    tmp = _staging_file(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        return _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def find(folder: LakePath, pattern: str) -> list[LakePath]:
    """What matches ``pattern`` under ``folder`` (``Path.glob`` rules, ``**`` for
    any depth), in name order; nothing when the folder is not there."""
    if not folder.is_dir():
        return []
    found: Iterable[LakePath] = folder.glob(pattern)
    return sorted(found, key=str)


def parquet_file(path: LakePath) -> pq.ParquetFile:
    """One lake file opened for reading (metadata, schema, batches)."""
    if isinstance(path, S3Path):
        return pq.ParquetFile(path.fs.open_input_file(path.key))
    return pq.ParquetFile(path)


def read_parquet(path: LakePath, columns: list[str] | None = None) -> pa.Table:
    """One lake file, whole or some columns."""
    return parquet_file(path).read(columns=columns)


def read_partition(path: LakePath) -> pa.Table | None:
    return read_parquet(path) if path.exists() else None


def remove_tree(path: LakePath) -> None:
    """Remove a folder of the lake (or every object under a prefix), if there."""
    if isinstance(path, S3Path):
        path.remove_tree()
    elif path.is_dir():
        shutil.rmtree(path)


class PartitionWriter:
    """Streams batches into a new partition file that replaces ``path`` on ``commit``.

    For partitions too large to hold as one table: memory stays at one batch, and
    readers still see the old file or the new one. Without a commit (an error,
    an early return) the new file is removed and the old one stays. On S3 the
    new file is a local staging file until ``commit`` uploads it.
    """

    def __init__(self, path: LakePath, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._tmp = _staging_file(path)
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
        """The new file, always local (read back before it is published)."""
        return self._tmp

    def commit(self) -> int:
        """Publish the new file over ``path``; returns its size in bytes."""
        self.close()
        try:
            return _publish(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


@lru_cache(maxsize=8)
def _s3_store(
    bucket: str,
    staging_dir: Path,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> S3Store:
    # One store (and one S3 client with its connection pool) per configuration.
    return S3Store(bucket, staging_dir, endpoint_url, region, access_key_id, secret_access_key)


def lake_root(settings: Settings) -> LakePath:
    """The lake's root: ``BIZOS_HOME/lake``, the folder or the ``s3://bucket/prefix``
    of ``BIZOS_LAKE_URL``."""
    if not settings.lake_on_s3:
        return settings.lake_dir
    bucket, _ = split_s3_url(settings.lake_location)
    secret = settings.aws_secret_access_key
    store = _s3_store(
        bucket,
        settings.home / "tmp" / "lake",
        settings.aws_endpoint_url,
        settings.aws_region,
        settings.aws_access_key_id,
        secret.get_secret_value() if secret else None,
    )
    return S3Path.from_url(settings.lake_location, store)


def quarantine_root(settings: Settings) -> LakePath:
    """Where rejected rows go, beside the tables: ``<lake>/_quarantine``."""
    return lake_root(settings) / "_quarantine"
