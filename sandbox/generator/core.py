"""What every source generator shares: seeded streams, ids, day allocation, the Parquet writer.

A table is written as ``<out>/<tenant>/<source>/<table>.parquet`` with the columns
``id``, a time column (``created`` or ``updated``, epoch seconds), ``seq``,
``tenant_id``, ``payload`` (the provider-shaped JSON object) and, for some tables,
a few extra columns the sandbox filters or aggregates on. Rows are written in
ascending ``(time, id)`` order and ``seq`` is the row's position in the file, so a
page of any size is one narrow ``seq`` range: the sandbox reads a page without
sorting or scanning the whole table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
"""The generated world's "now": the same date the CRM export generator uses."""

DAY = 86_400
ROW_GROUP_ROWS = 4_096
"""Small row groups: the sandbox reads one (or two) per page."""

Progress = Callable[[str, str, int], None]
"""``progress(tenant, "source.table", rows_written_so_far)``."""


def stream(seed: int, tenant_id: str, *parts: str) -> random.Random:
    """An independent, seeded random stream per tenant and purpose.

    Each table draws from its own stream, so changing the size of one table
    never changes the rows of another.
    """
    return random.Random(":".join((str(seed), tenant_id, *parts)))


_B64_TO_ALNUM = bytes.maketrans(b"+/", b"Xq")


def token(rng: random.Random, n: int, alphabet: str | None = None) -> str:
    """``n`` random characters; letters and digits unless another alphabet is given."""
    if alphabet is None:
        # base64 of random bytes with its two symbols mapped to letters: a few
        # times faster than drawing characters one by one, which matters at 1M rows.
        raw = base64.b64encode(rng.randbytes(n * 3 // 4 + 3)).translate(_B64_TO_ALNUM)
        return raw[:n].decode()
    return "".join(rng.choices(alphabet, k=n))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def iso_z(ts: int) -> str:
    """``2026-10-03T12:01:02Z``"""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(ts: int) -> str:
    """Saleor's DateTime: ``2026-10-03T12:01:02.000000+00:00``"""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def day_start(as_of: datetime, days_back: int) -> int:
    midnight = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    return epoch(midnight - timedelta(days=days_back))


WEEKDAY_WEIGHT = (1.1, 1.15, 1.15, 1.1, 1.0, 0.7, 0.6)


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    if total <= 0 or not weights:
        return [0] * len(weights)
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(r) for r in raw]
    short = total - sum(out)
    by_remainder = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in by_remainder[:short]:
        out[i] += 1
    return out


def daily_counts(
    total: int, first_day: int, days: int, rng: random.Random, *, growth: float = 0.8
) -> list[int]:
    """How many events fall on each of ``days`` days starting at epoch ``first_day``.

    A business that grows over the window, quieter at weekends, with day-to-day
    noise; the counts add up to ``total`` exactly.
    """
    weights = []
    for d in range(days):
        weekday = datetime.fromtimestamp(first_day + d * DAY, UTC).weekday()
        trend = 1.0 + growth * d / max(days - 1, 1)
        weights.append(trend * WEEKDAY_WEIGHT[weekday] * rng.uniform(0.75, 1.25))
    return allocate(total, weights)


def id_checksum(ids: Iterable[str]) -> str:
    """Order-independent checksum of a set of ids, sensitive to duplicates.

    The sum modulo 2**64 of the first 8 bytes (big-endian) of each id's SHA-256,
    as 16 hex digits. Loaders compute the same over what they ingested.
    """
    total = 0
    for one in ids:
        total += int.from_bytes(hashlib.sha256(one.encode()).digest()[:8], "big")
    return f"{total & 0xFFFFFFFFFFFFFFFF:016x}"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Defect:
    """A documented way a record is broken when ``with_defects`` is on."""

    kind: str  # "missing_field" or "unknown_field"
    field: str
    every: int  # one record in ``every``
    offset: int


@dataclass
class TableStats:
    count: int = 0
    checksum: int = 0
    min_ts: int | None = None
    max_ts: int | None = None
    defects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.count,
            "id_checksum": f"{self.checksum & 0xFFFFFFFFFFFFFFFF:016x}",
            "min_ts": self.min_ts,
            "max_ts": self.max_ts,
        }
        if self.defects:
            out["defects"] = self.defects
        return out


class TableWriter:
    """Appends rows (already in ``(time, id)`` order) to one Parquet file, a row group at a time.

    Written to a temporary name and renamed when closed, so a file that exists
    is complete.
    """

    def __init__(
        self,
        path: Path,
        *,
        tenant_id: str,
        time_column: str,
        extra: dict[str, pa.DataType] | None = None,
        defects: tuple[Defect, ...] = (),
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.tenant_id = tenant_id
        self.time_column = time_column
        self.extra = extra or {}
        self.defects = defects
        self.on_rows = on_rows
        self.schema = pa.schema(
            [
                ("id", pa.string()),
                (time_column, pa.int64()),
                ("seq", pa.int64()),
                ("tenant_id", pa.string()),
                ("payload", pa.string()),
                *self.extra.items(),
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_suffix(".parquet.tmp")
        self._writer = pq.ParquetWriter(
            self._tmp,
            self.schema,
            compression="zstd",
            use_dictionary=["tenant_id"],
            write_statistics=True,
        )
        self._buf: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        self.stats = TableStats()
        self._last: tuple[int, str] | None = None

    def add(self, row_id: str, ts: int, payload: dict[str, Any] | str, **extra: Any) -> None:
        """One row; ``payload`` is the object, or its JSON text already serialized."""
        key = (ts, row_id)
        if self._last is not None and key <= self._last:
            raise ValueError(f"{self.path.name}: rows out of order at {key} after {self._last}")
        self._last = key
        n = self.stats.count
        for defect in self.defects:
            if n % defect.every == defect.offset:
                payload = json.loads(payload) if isinstance(payload, str) else dict(payload)
                if defect.kind == "missing_field":
                    payload.pop(defect.field, None)
                else:
                    payload[defect.field] = {"introduced": "2026-10", "value": n}
                entry = self.stats.defects.setdefault(
                    f"{defect.kind}:{defect.field}",
                    {"kind": defect.kind, "field": defect.field, "ids": []},
                )
                entry["ids"].append(row_id)
        buf = self._buf
        buf["id"].append(row_id)
        buf[self.time_column].append(ts)
        buf["seq"].append(n)
        buf["tenant_id"].append(self.tenant_id)
        buf["payload"].append(payload if isinstance(payload, str) else dumps(payload))
        for name in self.extra:
            buf[name].append(extra[name])
        stats = self.stats
        stats.count = n + 1
        stats.checksum += int.from_bytes(hashlib.sha256(row_id.encode()).digest()[:8], "big")
        if stats.min_ts is None:
            stats.min_ts = ts
        stats.max_ts = ts
        if len(buf["id"]) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buf["id"]:
            return
        table = pa.table(self._buf, schema=self.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self._buf = {name: [] for name in self.schema.names}
        if self.on_rows:
            self.on_rows(self.stats.count)

    def close(self) -> TableStats:
        self._flush()
        self._writer.close()
        self._tmp.replace(self.path)
        return self.stats


@dataclass
class SourceOutput:
    """What one source generator hands back: per table stats, plus facts for the truth."""

    tables: dict[str, TableStats] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


class Writers:
    """Opens the writers of one tenant's source and collects their stats."""

    def __init__(
        self,
        out_dir: Path,
        tenant_id: str,
        source: str,
        *,
        with_defects: bool,
        defects: dict[str, tuple[Defect, ...]],
        progress: Progress | None,
    ) -> None:
        self.dir = out_dir / tenant_id / source
        self.tenant_id = tenant_id
        self.source = source
        self.with_defects = with_defects
        self.defects = defects
        self.progress = progress
        self.output = SourceOutput()

    def open(
        self, table: str, *, time_column: str, extra: dict[str, pa.DataType] | None = None
    ) -> TableWriter:
        name = f"{self.source}.{table}"
        progress = self.progress

        def on_rows(n: int) -> None:
            if progress:
                progress(self.tenant_id, name, n)

        return TableWriter(
            self.dir / f"{table}.parquet",
            tenant_id=self.tenant_id,
            time_column=time_column,
            extra=extra,
            defects=self.defects.get(table, ()) if self.with_defects else (),
            on_rows=on_rows,
        )

    def done(self, table: str, writer: TableWriter) -> None:
        self.output.tables[table] = writer.close()
