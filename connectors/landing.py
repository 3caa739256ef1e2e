"""Provider records into the Parquet lake, merged per partition, bad ones quarantined.

Layout: ``lake/<source>/<table>/tenant=<id>/month=<YYYY-MM>/part.parquet``, the
month taken (UTC) from the record's creation time, which never changes, so every
version of a record lands in the same partition and the merge there keeps
exactly one: the newest version (``_version``; among equal versions the last
one read). A batch is merged into each partition it
touches and the partition is replaced atomically (``lake.files.write_partition``),
so a crash leaves each partition either as it was or fully merged; re-reading
after a crash only replaces rows with themselves.

Why months, not days: a tenant's table spread over days is hundreds of files of a
few rows each (three years of history: over a thousand per table), and both the
landing (a file written per partition) and every reader (DuckDB, the raw copy)
pay per file. A month keeps a partition small enough to rewrite on each
incremental load. Lakes written with day partitions (``date=<YYYY-MM-DD>``) are
folded into months the next time their table lands (``fold_day_partitions``).

Columns: ``tenant_id``, then the provider's top-level fields under their own
names (the ones a table declares with fixed types, the rest with the type the
values have; nested objects and lists as JSON text), then ``_raw`` (the whole
record as JSON), ``_run_id``, ``_ingested_at`` and ``_version``. A field the provider adds
later simply becomes a new column (schema drift is kept, never fatal); a field
whose type changes falls back to text rather than failing the load.

Records without a required field, with a declared field of the wrong type, or
holding a NUL character anywhere (which Postgres cannot store: see
``nul_reason``), go to
``lake/_quarantine/<source>/<table>/tenant=<id>/month=<YYYY-MM>/part.parquet`` with the
reason, in the quarantine schema of the CRM export.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from operator import itemgetter
from typing import Any, Literal

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from core.settings import Settings
from lake.files import (
    LakePath,
    find,
    lake_root,
    partition_dir,
    quarantine_root,
    read_parquet,
    remove_tree,
    write_partition,
)
from lake.quarantine import QUARANTINE_SCHEMA

DateFormat = Literal["epoch", "iso", "yyyymmdd"]


DATE_LABELS: dict[str, str] = {
    "epoch": "a Unix time",
    "iso": "an ISO 8601 time",
    "yyyymmdd": "a YYYYMMDD date",
}
META_COLUMNS = ("tenant_id", "_raw", "_run_id", "_ingested_at", "_version")
VERSION_COLUMN = "_version"
"""When the landed state of a record was current, in Unix seconds times
``VERSION_SCALE``: the time it was read from a list, or the ``created`` of the
change event that carried it. The merge keeps the highest, so an older state read
later (a page of older events, a resumed batch) never replaces a newer one. The
scale leaves room to order several changes within one second (see
``version_of``)."""
VERSION_SCALE = 1000


def version_of(seconds: int, *, older_in_same_second: int = 0) -> int:
    """A record's version from a whole-second time. Providers stamp changes in whole
    seconds; when one object changed twice in the same second, a newest-first event
    log shows the newer first: each later-read one of that second is one step
    older (``older_in_same_second``), so the merge keeps the first read."""
    return (
        seconds * VERSION_SCALE + (VERSION_SCALE - 1) - min(older_in_same_second, VERSION_SCALE - 1)
    )


INGESTED_AT_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """What the lake needs to know about one source table."""

    source: str
    name: str
    date_field: str
    date_format: DateFormat
    primary_key: tuple[str, ...] = ("id",)
    required: tuple[str, ...] = ()
    """Fields a record cannot be loaded without, beyond the key and the date field."""
    columns: Mapping[str, pa.DataType] = field(default_factory=dict)
    """Fields with a fixed type; a value of another type sends the record to quarantine."""

    @cached_property
    def required_fields(self) -> tuple[str, ...]:
        names = [*self.primary_key, self.date_field, *self.required]
        return tuple(dict.fromkeys(names))

    @cached_property
    def column_checks(self) -> tuple[tuple[str, pa.DataType, frozenset[type]], ...]:
        """Per declared column: its name, type and the exact value types that pass
        without the full ``_type_ok`` (checked once per record and column)."""
        return tuple((name, kind, _exact_types(kind)) for name, kind in self.columns.items())


@dataclass(frozen=True)
class Fetched:
    """One record as read, with where it came from (for quarantine rows)."""

    record: Mapping[str, Any]
    origin: str
    position: int
    version: int | None = None
    """See ``VERSION_COLUMN``; None lands as null, older than any version."""


@dataclass
class LandedBatch:
    rows_loaded: int = 0
    rows_added: int = 0
    rows_quarantined: int = 0
    bytes_written: int = 0
    partitions: list[str] = field(default_factory=list)


# -- paths ---------------------------------------------------------------------------


def table_dir(settings: Settings, source: str, table: str, tenant_id: str) -> LakePath:
    return partition_dir(lake_root(settings), source, table, tenant=tenant_id)


PARTITION_KEY = "month"
LEGACY_DAY_KEY = "date"


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def partition_path(settings: Settings, spec: TableSpec, tenant_id: str, month: str) -> LakePath:
    return (
        partition_dir(lake_root(settings), spec.source, spec.name, tenant=tenant_id, month=month)
        / "part.parquet"
    )


def quarantine_dir(settings: Settings, source: str, table: str, tenant_id: str) -> LakePath:
    return partition_dir(quarantine_root(settings), source, table, tenant=tenant_id)


# -- validation ----------------------------------------------------------------------


def record_day(value: Any, fmt: DateFormat) -> date:
    """The UTC day of a creation time; ValueError when it is not one."""
    if fmt == "epoch":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"not a Unix timestamp: {value!r}")
        return datetime.fromtimestamp(value, UTC).date()
    if not isinstance(value, str):
        raise ValueError(f"not a date string: {value!r}")
    if fmt == "yyyymmdd":
        return datetime.strptime(value, "%Y%m%d").date()
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).date()


def _exact_types(kind: pa.DataType) -> frozenset[type]:
    """The value types ``_type_ok`` accepts for ``kind`` by their exact type: what a JSON
    decoder gives. Anything else (a subclass, a mismatch) takes the full check."""
    if pa.types.is_integer(kind):
        return frozenset({int, type(None)})
    if pa.types.is_floating(kind):
        return frozenset({int, float, type(None)})
    if pa.types.is_boolean(kind):
        return frozenset({bool, type(None)})
    if pa.types.is_string(kind):
        return frozenset({str, type(None)})
    return frozenset()


def _type_ok(value: Any, kind: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_integer(kind):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_floating(kind):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if pa.types.is_boolean(kind):
        return isinstance(value, bool)
    if pa.types.is_string(kind):
        return isinstance(value, str)
    return True


def _nul_path(value: Any, path: str) -> str | None:
    """Where in a record the first NUL character is (``field``, ``field.sub[2]``)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _nul_path(key, path) or _nul_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def nul_reason(record: Mapping[str, Any], raw: str) -> str | None:
    """Why a record holding a NUL character cannot be loaded, or None.

    Postgres text and jsonb cannot hold NUL, while DuckDB can: quarantining the
    record here keeps both targets alike and names the field, where the raw
    load would otherwise stop the whole tenant. ``raw`` is the record's JSON
    (NUL is always escaped there), so the common case costs one substring search.
    """
    if "\\u0000" not in raw:
        return None
    where = _nul_path(record, "")
    if where is None:
        return None  # only an escaped backslash followed by "u0000" in some text
    return f"NUL character in field {where or '(a field name)'}, which Postgres cannot store"


def check_record(record: Any, spec: TableSpec) -> tuple[date | None, str | None]:
    """The partition day of a loadable record, or the reason it cannot be loaded."""
    # A decoded record is a dict: its exact type is checked first, as an isinstance
    # against the Mapping ABC costs a microsecond per record.
    if type(record) is not dict and not isinstance(record, Mapping):
        return None, f"not an object: {type(record).__name__}"
    missing = [f for f in spec.required_fields if record.get(f) in (None, "")]
    if missing:
        return None, f"missing required field(s): {', '.join(missing)}"
    wrong = [
        f"{name} is not {kind}: {record[name]!r}"
        for name, kind, exact in spec.column_checks
        if name in record and type(record[name]) not in exact and not _type_ok(record[name], kind)
    ]
    if wrong:
        return None, "; ".join(wrong)
    try:
        day = record_day(record[spec.date_field], spec.date_format)
    except (ValueError, OverflowError, OSError) as exc:
        return None, f"{spec.date_field} is not {DATE_LABELS[spec.date_format]}: {exc}"
    return day, None


# -- building tables -----------------------------------------------------------------


# The standard library's encoder, for what orjson refuses (integers beyond 64 bits,
# lone surrogates, non-text keys): one instance, as json.dumps with options builds
# a new one per call.
_stdlib_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# Datetimes and dataclasses go through ``default=str`` as with the standard encoder,
# so a value lands as the same text whichever encoder wrote it.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: Any) -> str:
    """``value`` as compact JSON text (UTF-8, no ASCII escapes).

    Every landed record is encoded once for ``_raw`` and once more per nested
    field: with the standard library that was the largest single cost of a load
    (about 40% of its CPU on Stripe charges); orjson does it several times faster.
    """
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _stdlib_json(value)


def _json_texts(values: Sequence[Any]) -> list[str | None]:
    """``_json`` of each value, None kept: one orjson call per value without a
    Python call around each (a Stripe charge has six nested fields)."""
    dumps = orjson.dumps
    try:
        return [
            None if v is None else dumps(v, default=str, option=_ORJSON_OPTIONS).decode()
            for v in values
        ]
    except TypeError:
        return [None if v is None else _json(v) for v in values]


def _column(values: Sequence[Any], kind: pa.DataType | None) -> pa.Array | None:
    """The batch's column of a field: typed as declared, else inferred; None for an
    undeclared field null in every record of the batch. Such a field has no type to
    infer, and landing it as text made files disagree on its type where another
    batch had numbers (Spark's ``mergeSchema`` refuses that); left out, readers see
    it null, and ``_raw`` still holds every record whole."""
    if kind is not None:
        return pa.array(values, type=kind)
    # The distinct types, found in C: a generator over every value cost more than
    # building the column.
    types = set(map(type, values))
    if any(issubclass(t, dict | list) for t in types):
        return pa.array(_json_texts(values), type=pa.string())
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed types within the batch (drift in progress): text keeps every value.
        return pa.array(
            [None if v is None else v if isinstance(v, str) else _json(v) for v in values],
            type=pa.string(),
        )
    return None if pa.types.is_null(array.type) else array


def _field_values(records: Sequence[Mapping[str, Any]], fields: list[str]) -> list[Sequence[Any]]:
    """Per field, its value in each record (None where a record lacks it).

    When every record has every field (a provider's list: the usual case) the
    values are picked and transposed in C, ``itemgetter`` then ``zip``; a
    comprehension of ``record.get`` per field and record was a quarter of a load's
    CPU on Stripe charges (50 fields)."""
    if not fields:
        return []
    if len(fields) > 1:
        try:
            return list(zip(*map(itemgetter(*fields), records), strict=True)) or [
                () for _ in fields
            ]
        except (KeyError, TypeError):
            pass  # some record lacks a field (or is no dict): the general way
    return [[r.get(name) for r in records] for name in fields]


def build_table(
    records: Sequence[Mapping[str, Any]],
    spec: TableSpec,
    *,
    tenant_id: str,
    run_id: str,
    ingested_at: datetime,
    versions: Sequence[int | None] | None = None,
    raws: Sequence[str] | None = None,
) -> pa.Table:
    """Checked records as an Arrow table: declared columns typed, others inferred.
    ``raws``: the records' JSON when the caller has it already."""
    names: dict[str, None] = dict.fromkeys(spec.columns)
    for record in records:
        names.update(dict.fromkeys(record))
    columns: dict[str, pa.Array] = {
        "tenant_id": pa.array([tenant_id] * len(records), type=pa.string())
    }
    # A provider field named like ours stays in _raw only.
    fields = [name for name in names if name not in META_COLUMNS]
    for name, values in zip(fields, _field_values(records, fields), strict=True):
        column = _column(values, spec.columns.get(name))
        if column is not None:
            columns[name] = column
    columns["_raw"] = pa.array(
        list(raws) if raws is not None else [_json(r) for r in records], type=pa.string()
    )
    columns["_run_id"] = pa.array([run_id] * len(records), type=pa.string())
    columns["_ingested_at"] = pa.array([ingested_at] * len(records), type=INGESTED_AT_TYPE)
    columns[VERSION_COLUMN] = pa.array(
        list(versions) if versions is not None else [None] * len(records), type=pa.int64()
    )
    return pa.table(columns)


def concat_drifting(tables: Iterable[pa.Table]) -> pa.Table:
    """Concatenate tables whose columns may differ: new columns are added (null
    elsewhere), compatible types widen, incompatible ones become text."""
    parts = [t for t in tables if t is not None]
    if len(parts) == 1:
        return parts[0]
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    seen: dict[str, pa.DataType] = {}
    to_text: set[str] = set()
    for part in parts:
        for f in part.schema:
            if f.name not in seen or pa.types.is_null(seen[f.name]):
                seen[f.name] = f.type
                continue
            try:
                pa.unify_schemas(
                    [pa.schema([(f.name, seen[f.name])]), pa.schema([f])],
                    promote_options="permissive",
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                to_text.add(f.name)
    fixed = []
    for part in parts:
        for name in to_text & set(part.column_names):
            index = part.schema.get_field_index(name)
            part = part.set_column(index, name, pc.cast(part.column(name), pa.string()))
        fixed.append(part)
    return pa.concat_tables(fixed, promote_options="permissive")


def keep_latest(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """One row per key: the one with the highest ``_version`` (null lowest) when the
    table has that column, and among equal versions the last one in the table (rows
    are in the order they were read).

    Polars picks the rows from the key and version columns only; the table itself
    stays Arrow, so its column types (and the Parquet written from it) are unchanged.
    """
    if table.num_rows == 0:
        return table
    row = "__row"
    versioned = VERSION_COLUMN in table.column_names
    frame = pl.from_arrow(table.select([*key, VERSION_COLUMN] if versioned else [*key]))
    assert isinstance(frame, pl.DataFrame)
    index = frame.with_row_index(row)
    if versioned:
        index = index.sort(VERSION_COLUMN, nulls_last=False, maintain_order=True)
    kept = index.unique(subset=list(key), keep="last", maintain_order=True)[row].sort()
    return table.take(pa.array(kept.to_numpy()))


# -- landing -------------------------------------------------------------------------


def land_batch(
    settings: Settings,
    spec: TableSpec,
    *,
    tenant_id: str,
    batch: Sequence[Fetched],
    run_id: str,
    now: datetime | None = None,
) -> LandedBatch:
    """Check, merge and write one batch; returns what it did."""
    now = now or datetime.now(UTC)
    result = LandedBatch()
    fold_day_partitions(settings, spec, tenant_id)
    by_month: dict[str, list[tuple[Fetched, str]]] = defaultdict(list)
    rejected: list[dict[str, Any]] = []
    months: dict[date, str] = {}  # strftime per record was 4% of a load
    for item in batch:
        day, reason = check_record(item.record, spec)
        raw = _json(item.record)
        if reason is None:  # a record with no reason passed check_record: a Mapping
            reason = nul_reason(item.record, raw)
        if reason is not None or day is None:
            rejected.append(
                {
                    "tenant_id": tenant_id,
                    "source": spec.source,
                    "source_file": item.origin,
                    "source_line": item.position,
                    "reason": reason,
                    "raw_record": raw,
                    "quarantined_at": now,
                }
            )
            continue
        month = months.get(day)
        if month is None:
            month = months[day] = month_of(day)
        by_month[month].append((item, raw))

    for month in sorted(by_month):
        records = [item.record for item, _ in by_month[month]]
        path = partition_path(settings, spec, tenant_id, month)
        new = build_table(
            records,
            spec,
            tenant_id=tenant_id,
            run_id=run_id,
            ingested_at=now,
            versions=[item.version for item, _ in by_month[month]],
            raws=[raw for _, raw in by_month[month]],
        )
        distinct = len({tuple(r.get(k) for k in spec.primary_key) for r in records})
        existing = _read_file(path)
        before = existing.num_rows if existing is not None else 0
        if existing is None and distinct == new.num_rows:
            merged = new  # a new month with no repeated key: nothing to merge
        else:
            merged = keep_latest(concat_drifting([existing, new]), spec.primary_key)
        result.bytes_written += write_partition(merged, path)
        result.rows_loaded += distinct
        result.rows_added += merged.num_rows - before
        result.partitions.append(month)

    if rejected:
        result.rows_quarantined = len(rejected)
        path = (
            partition_dir(
                quarantine_root(settings),
                spec.source,
                spec.name,
                tenant=tenant_id,
                month=month_of(now.date()),
            )
            / "part.parquet"
        )
        new_q = pa.Table.from_pylist(rejected, schema=QUARANTINE_SCHEMA)
        merged_q = concat_drifting([_read_file(path), new_q])
        # A record re-read after a resume is rejected again for the same reason: once is enough.
        result.bytes_written += write_partition(
            keep_latest(merged_q, ["reason", "raw_record"]), path
        )
    return result


# -- reading back --------------------------------------------------------------------


def _read_file(path: LakePath) -> pa.Table | None:
    # One known file without the dataset machinery, which costs more than the
    # read for a small partition.
    return read_parquet(path) if path.exists() else None


def fold_day_partitions(settings: Settings, spec: TableSpec, tenant_id: str) -> int:
    """Merge a tenant's day partitions (an older layout) into month partitions.

    Each month is written (merged with what it holds, newest version per key)
    before its days are removed, so a crash in between leaves rows twice, which
    the next fold and every reader's latest-version rule absorb, never none.
    Returns how many day partitions were folded."""
    folded = 0
    for folder, key in (
        (table_dir(settings, spec.source, spec.name, tenant_id), spec.primary_key),
        (quarantine_dir(settings, spec.source, spec.name, tenant_id), ["reason", "raw_record"]),
    ):
        days = find(folder, f"{LEGACY_DAY_KEY}=*/part.parquet")
        by_month: dict[str, list[LakePath]] = defaultdict(list)
        for file in days:
            day = date.fromisoformat(file.parent.name.removeprefix(f"{LEGACY_DAY_KEY}="))
            by_month[month_of(day)].append(file)
        for month, files in sorted(by_month.items()):
            target = folder / f"{PARTITION_KEY}={month}" / "part.parquet"
            parts = [_read_file(target), *(read_parquet(f) for f in files)]
            write_partition(keep_latest(concat_drifting(parts), list(key)), target)
            for file in files:
                remove_tree(file.parent)
            folded += len(files)
    return folded


def _read_dir(folder: LakePath) -> pa.Table | None:
    files = find(folder, "*=*/part.parquet")
    if not files:
        return None
    return concat_drifting(read_parquet(f) for f in files)


def read_table(settings: Settings, source: str, table: str, tenant_id: str) -> pa.Table | None:
    """Every partition of one tenant's table, schemas unioned; None when nothing landed."""
    return _read_dir(table_dir(settings, source, table, tenant_id))


def read_quarantine(settings: Settings, source: str, table: str, tenant_id: str) -> pa.Table | None:
    return _read_dir(quarantine_dir(settings, source, table, tenant_id))
