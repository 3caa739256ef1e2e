"""The loop every connector shares: read pages, land them in batches, move the cursor.

A source module only knows its provider: how to authenticate, how to page, and
what cursor to save after each page (``Page.cursor``: the whole state to resume
from once that page and every page before it are in the lake). This module owns
the order of effects that makes a load safe:

1. pages are buffered until ``batch_size`` records (bounded memory),
2. the batch is merged into the lake (atomic per partition),
3. only then is the cursor of the batch's last page saved.

A table's first load (no cursor) reads its whole history, whatever its age;
later loads read from the cursor. A *windowed* load (``window=(start, end)``,
``bizos ingest --since``) reads only the records whose time is in ``[start,
end)``, through the provider's own time filters (creation time, or update time
where the provider filters by it): a reload, a backfill of a span. It leaves the
cursor where it is (the merge by primary key makes any overlap with cursor loads
harmless) and is logged with the window bounds as its cursor before and after.

Every landed record carries a version (``Page.versions``, else the time the read
started): the lake's merge keeps the newest, so a change read from an event log
newest first never loses to an older state read after it.

A crash anywhere between two saves re-reads at most one batch on the next run,
and the merge makes that re-read replace rows instead of duplicating them.
When the provider fails (retries exhausted, bad credential, malformed pages),
what was already read is landed and checkpointed before the error is raised,
so the next run resumes after it.
"""

from __future__ import annotations

import gc
import logging
import time as clock_time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connectors.http_client import (
    ConnectorError,
    CredentialError,
    RequestPolicy,
    SourceClient,
    credential_parts,
)
from connectors.landing import Fetched, TableSpec, land_batch, version_of
from connectors.state import (
    ConnectorStateStore,
    Cursor,
    LoadLogRow,
    connector_state,
    dump_cursor,
)
from core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50_000


@dataclass(frozen=True)
class Page:
    """Records of one response and the cursor to save once they are in the lake."""

    records: Sequence[Mapping[str, Any]]
    origin: str
    cursor: Cursor
    versions: Sequence[int | None] | None = None
    """Per record, when its state was current (the change event's time); default:
    the time the load started, as for any record read from a list."""


@dataclass(frozen=True)
class Credential:
    """How a tenant's secret is presented to a source. Its repr shows no secret."""

    headers: Mapping[str, str] = field(repr=False)
    secrets: Sequence[str] = field(repr=False)
    """Every string to mask: the secret and anything derived from it."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Non-secret settings carried in the credential (e.g. a GA4 property id)."""
    grant: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Secret fields a source trades for short-lived access tokens (an OAuth refresh
    grant: SP-API's client secret and refresh token); masked like ``secrets``, never
    in ``options``, which may be logged."""


@dataclass(frozen=True)
class ReadContext:
    client: SourceClient
    spec: TableSpec
    cursor: Cursor
    options: Mapping[str, Any]
    page_size: int
    full_refresh: bool
    now: datetime
    window: tuple[datetime, datetime] | None = None
    """Read only records whose event time is in ``[start, end)``; ``cursor`` is then empty."""
    settings: Settings | None = None
    """For a source that reads what it needs from the lake or the tenant's inbox
    (SP-API: the catalog landed before its offers, the price lists' identifiers)."""
    grant: Mapping[str, str] = field(default_factory=dict, repr=False)
    """``Credential.grant``: the secrets of a token refresh, for the source alone."""


@dataclass(frozen=True)
class SourceDef:
    """One integration source: its tables, its auth, its paging."""

    name: str
    tables: Mapping[str, TableSpec]
    credential: Callable[[str], Credential]
    read: Callable[[ReadContext], Iterator[Page]]
    page_size: int = 100
    event_tables: frozenset[str] = frozenset()
    """Tables of events, each record stamped once and never changed (documentation and
    tests; every table loads the same way and takes a window)."""
    check_secret: Callable[[str], object] | None = None
    """Raises ValueError (naming the field, never a value) when a credential about to
    be stored is not in the form ``credential`` reads: refused before it is stored."""
    read_by_time: bool = True
    """Records are read from a time cursor (or a window) and the sandbox's ground truth
    counts them; False for a source read whole on every run (SP-API's catalog)."""


@dataclass(frozen=True)
class PageProgress:
    """Passed to ``progress`` after each page is read (before it is landed)."""

    tenant_id: str
    source: str
    table: str
    pages: int
    records: int


@dataclass
class LoadResult:
    """What one load of one table did; also its row in the load log."""

    run_id: str
    tenant_id: str
    source: str
    table: str
    status: str = "success"
    rows_in: int = 0
    rows_loaded: int = 0
    rows_added: int = 0
    rows_quarantined: int = 0
    pages: int = 0
    bytes_written: int = 0
    cursor_before: Cursor | None = None
    cursor_after: Cursor | None = None
    error: str | None = None
    partitions: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    duration_s: float = 0.0

    def log_row(self) -> LoadLogRow:
        return LoadLogRow(
            run_id=self.run_id,
            tenant_id=self.tenant_id,
            source=self.source,
            table_name=self.table,
            rows_in=self.rows_in,
            rows_loaded=self.rows_loaded,
            rows_added=self.rows_added,
            rows_quarantined=self.rows_quarantined,
            cursor_before=dump_cursor(self.cursor_before),
            cursor_after=dump_cursor(self.cursor_after),
            bytes=self.bytes_written,
            duration_s=self.duration_s,
            status=self.status,
            error=self.error,
            started_at=self.started_at,
            finished_at=self.finished_at or datetime.now(UTC),
        )


ProgressCallback = Callable[[PageProgress], None]


def open_client(
    source: SourceDef,
    *,
    tenant_id: str,
    secret: str,
    base_url: str,
    policy: RequestPolicy | None = None,
) -> tuple[SourceClient, Credential]:
    try:
        credential = source.credential(secret)
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialError(
            f"the stored {source.name} credential of tenant {tenant_id!r} is not in the "
            f"expected form ({type(exc).__name__}); set it again with "
            f"`bizos credentials set --tenant {tenant_id} --source {source.name}`",
            source=source.name,
            tenant_id=tenant_id,
        ) from None
    client = SourceClient(
        source=source.name,
        tenant_id=tenant_id,
        base_url=base_url,
        headers=credential.headers,
        secrets=[*credential_parts(secret), *credential.secrets],
        policy=policy,
    )
    return client, credential


Window = tuple[datetime, datetime]


def days_window(since: date | None, until: date | None, *, now: datetime) -> Window | None:
    """The load window of ``--since``/``--until`` (UTC days, ``until`` included): from
    ``since``'s midnight to the midnight after ``until``, or to ``now``; None when
    neither is given (a load from the cursor). ValueError when it would be empty."""
    if since is None and until is None:
        return None
    if since is None:
        raise ValueError("--until needs --since: a reload starts on a day")
    start = datetime.combine(since, time(), UTC)
    end = datetime.combine(until + timedelta(days=1), time(), UTC) if until else now
    if not start < end:
        raise ValueError(
            f"nothing to reload: --since {since.isoformat()} is after "
            + (f"--until {until.isoformat()}" if until else "today")
        )
    return start, end


def check_window(window: Window) -> None:
    """ValueError unless ``window`` is a non-empty, time-zoned span."""
    start, end = window
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a load window needs time-zone-aware bounds (UTC)")
    if not start < end:
        raise ValueError(f"a load window must end after it starts: [{start}, {end})")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a table loads.

    A batch holds up to ``batch_size`` decoded records, each a tree of dicts and
    lists: every few hundred records allocated, the collector walks the young
    objects, and every so often all the live ones, though JSON trees hold no
    cycles and are freed by reference counting alone. On Stripe charges that was
    30% of a load's CPU. Cycles made meanwhile (responses, exceptions) are
    collected after each batch is landed (``load_table``) and once the collector
    is back on. Process-wide, as the collector is:
    another thread's cycles wait for the load to end too.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_table(
    settings: Settings,
    source: SourceDef,
    table: str,
    *,
    tenant_id: str,
    client: SourceClient,
    credential: Credential,
    store: ConnectorStateStore | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    page_size: int | None = None,
    full_refresh: bool = False,
    progress: ProgressCallback | None = None,
    window: Window | None = None,
) -> LoadResult:
    """Load one table for one tenant from where its cursor stands, or only ``window``;
    see the module doc."""
    spec = source.tables[table]
    if window is not None:
        check_window(window)
    store = store or connector_state(settings)
    mask = client.mask
    result = LoadResult(
        run_id=run_id or uuid.uuid4().hex, tenant_id=tenant_id, source=source.name, table=table
    )
    clock = clock_time.monotonic()
    with (
        store.lock(tenant_id=tenant_id, source=source.name, table=table),
        cyclic_gc_paused(),
    ):
        if window is None:
            before = store.get_cursor(tenant_id=tenant_id, source=source.name, table=table)
            result.cursor_before = before
            result.cursor_after = before
        else:
            before = None
            result.cursor_before = {"window_start": window[0].isoformat()}
            result.cursor_after = {"window_end": window[1].isoformat()}
        buffer: list[Fetched] = []
        pending: Cursor | None = None

        def flush() -> None:
            nonlocal buffer, pending
            if buffer:
                landed = land_batch(
                    settings, spec, tenant_id=tenant_id, batch=buffer, run_id=result.run_id
                )
                result.rows_loaded += landed.rows_loaded
                result.rows_added += landed.rows_added
                result.rows_quarantined += landed.rows_quarantined
                result.bytes_written += landed.bytes_written
                result.partitions.extend(p for p in landed.partitions if p not in result.partitions)
                buffer = []
                # With the collector paused, everything allocated since is in its
                # youngest generation: collecting that now, the batch gone, frees
                # the cycles read meanwhile (httpx responses hold their page's
                # bytes in one) for the cost of walking what is still alive.
                gc.collect(0)
            if pending is not None and window is None:
                store.put_cursor(
                    tenant_id=tenant_id, source=source.name, table=table, cursor=pending
                )
                result.cursor_after = pending
                pending = None

        context = ReadContext(
            client=client,
            spec=spec,
            cursor=dict(before or {}),
            options=credential.options,
            page_size=page_size or source.page_size,
            full_refresh=full_refresh,
            now=datetime.now(UTC),
            window=window,
            settings=settings,
            grant=credential.grant,
        )
        read_at = version_of(int(context.now.timestamp()))
        try:
            try:
                for page in source.read(context):
                    result.pages += 1
                    result.rows_in += len(page.records)
                    versions = page.versions or [read_at] * len(page.records)
                    buffer.extend(
                        Fetched(record, page.origin, n, version)
                        for n, (record, version) in enumerate(
                            zip(page.records, versions, strict=True), start=1
                        )
                    )
                    pending = page.cursor
                    if progress is not None:
                        progress(
                            PageProgress(
                                tenant_id, source.name, table, result.pages, result.rows_in
                            )
                        )
                    if len(buffer) >= batch_size:
                        flush()
            except ConnectorError:
                # The provider failed; every page read before is complete up to its
                # cursor, so keep it: the next run starts after it.
                flush()
                raise
            flush()
        except BaseException as exc:
            result.status = "failed"
            result.error = mask(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            result.finished_at = datetime.now(UTC)
            result.duration_s = round(clock_time.monotonic() - clock, 3)
            try:
                store.record_load(result.log_row())
            except Exception:  # the load's own outcome matters more than its log row
                log.exception(
                    "could not write the load log row of %s/%s for %s",
                    source.name,
                    table,
                    tenant_id,
                )
    log.info(
        "%s/%s tenant %s: %d read, %d loaded (%d new), %d quarantined in %.1fs",
        source.name,
        table,
        tenant_id,
        result.rows_in,
        result.rows_loaded,
        result.rows_added,
        result.rows_quarantined,
        result.duration_s,
    )
    return result
