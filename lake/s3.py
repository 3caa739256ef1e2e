"""The lake on object storage: an ``s3://bucket/prefix`` location that reads like a Path.

Call sites build lake locations with ``/`` and ask ``exists()``, ``is_dir()``,
``glob()`` the way they do for a local folder, so one code path serves both;
reading and writing Parquet goes through ``lake.files``, which knows how each
kind of location is written atomically (see there and docs/architecture.md,
"The lake on object storage").

S3 has no folders: a "directory" is a key prefix that some object lies under,
``mkdir`` does nothing, and removing a tree deletes every object under its
prefix. ``S3Path`` is deliberately not ``os.PathLike``, so it can never be
handed to ``open()`` or a local writer by mistake.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urlsplit

import pyarrow.fs as pafs


@dataclass(frozen=True)
class S3Store:
    """One bucket and how to reach it (the standard ``AWS_*`` settings).

    ``staging_dir`` is a local folder where a partition is written in full
    before it is uploaded to its final key in one request, so a half-written
    file never reaches the bucket."""

    bucket: str
    staging_dir: Path
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @cached_property
    def filesystem(self) -> pafs.S3FileSystem:
        kwargs: dict[str, object] = {}
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(
                    f"AWS_ENDPOINT_URL must be http(s)://host[:port], got {self.endpoint_url!r}"
                )
            kwargs["endpoint_override"] = parts.netloc
            kwargs["scheme"] = parts.scheme
        if self.access_key_id or self.secret_access_key:
            kwargs["access_key"] = self.access_key_id or ""
            kwargs["secret_key"] = self.secret_access_key or ""
        return pafs.S3FileSystem(region=self.region or "us-east-1", **kwargs)


class S3Stat(NamedTuple):
    """The two fields of ``os.stat_result`` the lake's callers read."""

    st_size: int
    st_mtime: float


class S3Path:
    """An object key (or key prefix) in one bucket, with the Path methods the lake uses.

    A plain class, not a dataclass: ``dataclasses.asdict`` of a result holding
    one would otherwise copy the store, credentials and all, into a summary."""

    __slots__ = ("key", "store")

    def __init__(self, key: str, store: S3Store) -> None:
        self.key = key
        self.store = store

    def __repr__(self) -> str:
        return f"S3Path({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Path) and other.key == self.key

    def __hash__(self) -> int:
        return hash(("s3", self.key))

    def __lt__(self, other: S3Path) -> bool:
        return self.key < other.key

    def __copy__(self) -> S3Path:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> S3Path:
        return self

    @classmethod
    def from_url(cls, url: str, store: S3Store) -> S3Path:
        """``s3://bucket/prefix`` in ``store`` (whose bucket it must be)."""
        bucket, prefix = split_s3_url(url)
        if bucket != store.bucket:
            raise ValueError(f"{url} is not in bucket {store.bucket!r}")
        return cls(f"{bucket}/{prefix}".rstrip("/"), store)

    # -- path algebra ------------------------------------------------------------

    def __str__(self) -> str:
        return f"s3://{self.key}"

    def __truediv__(self, other: str) -> S3Path:
        return self.joinpath(other)

    def joinpath(self, *parts: str) -> S3Path:
        return S3Path(str(PurePosixPath(self.key).joinpath(*parts)), self.store)

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def parent(self) -> S3Path:
        parent = str(PurePosixPath(self.key).parent)
        if "/" not in self.key:
            return self  # the bucket is its own parent, as "/" is
        return S3Path(parent, self.store)

    def with_name(self, name: str) -> S3Path:
        return S3Path(str(PurePosixPath(self.key).with_name(name)), self.store)

    # -- what is stored ----------------------------------------------------------

    @property
    def fs(self) -> pafs.S3FileSystem:
        return self.store.filesystem

    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.key)

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def stat(self) -> S3Stat:
        info = self._info()
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no object at {self}")
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        return S3Stat(int(info.size or 0), mtime)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is written under it."""

    def unlink(self, missing_ok: bool = False) -> None:
        if not self.is_file():
            if missing_ok:
                return
            raise FileNotFoundError(f"no object at {self}")
        self.fs.delete_file(self.key)

    def remove_tree(self) -> None:
        """Delete every object under this prefix (a tenant's or a table's partitions)."""
        if self.is_dir():
            self.fs.delete_dir(self.key)

    def glob(self, pattern: str) -> Iterator[S3Path]:
        """Keys under this prefix matching ``pattern`` (``*``/``?``/``[..]`` within one
        level, ``**`` for any number of levels), as ``Path.glob`` would match files
        and folders; one recursive listing of the prefix."""
        wanted = pattern.strip("/").split("/")
        selector = pafs.FileSelector(self.key, recursive=True, allow_not_found=True)
        for info in sorted(self.fs.get_file_info(selector), key=lambda i: i.path):
            relative = info.path[len(self.key) :].strip("/").split("/")
            if _match(relative, wanted):
                yield S3Path(info.path, self.store)

    def rglob(self, pattern: str) -> Iterator[S3Path]:
        return self.glob(f"**/{pattern}")


def _match(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def is_s3_url(location: str | None) -> bool:
    return location is not None and location.startswith("s3://")


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"BIZOS_LAKE_URL: not an s3://bucket/prefix URL: {url!r}")
    return parts.netloc, parts.path.strip("/")
