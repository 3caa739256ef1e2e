"""What the API reads, and how: keys, a tenant's rows, readiness, each behind a version.

The API does not read through ``ServingStore`` (the publisher's interface, as the
owner); it reads through an ``ApiReader``, picked once in ``api_reader`` from
``settings.target``:

- ``PostgresReader``: async psycopg as the API's own login role
  (``BIZOS_API_DATABASE_URL``, see ``serving.api_role``). Each read through SQL is
  one round trip: one simple-protocol query whose two statements Postgres runs as one
  transaction, the first setting ``bizos.tenant_id`` with ``set_config(..., true)``
  (SET LOCAL, gone when the transaction ends), the second asking
  ``serving.publish_version`` and reading the rows in one statement, so the ETag and
  the rows come from one snapshot. Keys are found through ``ops.api_key_find``. With a
  streaming replica (``BIZOS_API_REPLICA_URL``) published rows are read there, and keys,
  their last use, reviews and the change feed stay on the primary; a copy is read only
  once the replica has replayed what the feed has announced (``_load_copy``). Every connection
  carries a statement and lock timeout; every call is also bounded on the client side,
  so a server that stops answering becomes ``StoreUnavailable`` (503), not a hang.
- ``EmbeddedReader``: a tenant's Parquet file becomes an in-memory snapshot (rows in
  API order, an index by key, encoded bodies) when the process starts (the hot
  tables) or the first time it is read, rebuilt when the file changes (a publish
  renames a new file over it, so its inode changes). A request on a current
  snapshot costs one ``stat`` per table and no I/O.

Snapshots of the hot tables (``preencode``: the lead scores and their history) hold
every row's JSON body, encoded when the snapshot is built in a worker thread; other
tables encode a row on first read.

Both speak in ``Versioned`` answers; rows come with their encoded JSON (``Encoder``
per contract, given by the route), so the route layer stays generic over contracts.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

import migrations
from core.contracts.serving_tables import SERVING_TABLES
from core.contracts.table import TableContract
from core.settings import Settings, Target
from opsdb.key_changes import KEY_MAX_AGE_S
from serving import keys as api_keys
from serving.change_feed import KEYS_TOPIC, ChangeFeed, Stamp, publish_topic
from serving.keys import KeyGrant
from serving.store import (
    NothingPublished,
    Row,
    StoreUnavailable,
    key_filter,
    order_clause,
    row_filter,
    select_list,
)

log = logging.getLogger(__name__)

Encoder = Callable[[Row], bytes]
TENANT_SETTING = "bizos.tenant_id"
LOAD_WAIT_S = 0.1
"""How long a request waits for its tenant's copy to be read before it reads through SQL."""
KEY_COLUMNS_MAX_BYTES = 64 * 1024**2
"""Key columns of served files kept by an embedded API process for reads by key
beyond its copies budget (``EmbeddedReader._key_columns_of``)."""
LOAD_TIMEOUT_S = 120
"""Bound on reading one tenant's copy of a table on Postgres (in the background)."""
LOAD_RETRY_S = 5.0
"""After a copy failed to load, requests read through SQL this long before it is retried."""
# A key's last use is written at most this often per key and process.
TOUCH_EVERY_S = 60.0
ADMIT_IDLE_S = 30.0
"""With the copies' budget (``BIZOS_API_SNAPSHOT_MAX_ROWS``) full, a tenant's copy is
made only when a held one has not been read for this long (and makes room): when
more tenants are read than fit, copies would otherwise evict each other on every
request, each rebuilt at the cost of encoding all its rows."""
REPLICA_WAIT_S = 10.0
"""How long a copy waits for the replica to replay the primary's WAL up to the moment
its load began; past it the load fails, requests read the replica through SQL, and
the copy is tried again ``LOAD_RETRY_S`` later."""
ENCODE_BATCH_ROWS = 2048
"""Rows turned into Python values at a time while a snapshot's bodies are encoded."""

PREENCODED: dict[str, Encoder] = {}
HOT_CONTRACTS: dict[str, TableContract] = {}
"""Contracts whose snapshot rows are all encoded when the snapshot is built, by name:
the hot routes' tables (``preencode``). Other tables encode a row on first read."""


def preencode(contract: TableContract, encode: Encoder) -> None:
    """Encode every row of ``contract`` with ``encode`` when a snapshot is built.

    Called by a route module for the table it serves most (serving/routes/lead_scores.py);
    reads with any other encoder still work, encoding on first read.
    """
    PREENCODED[contract.name] = encode
    HOT_CONTRACTS[contract.name] = contract


class ServedRow:
    """A row and its JSON body, as the route returns it.

    From a snapshot, the body was encoded when the snapshot was built and the row is
    made only if asked for (a page's last row, for its cursor): most requests need
    only the bytes.
    """

    __slots__ = ("_load", "_row", "body")

    def __init__(self, row: Row | None, body: bytes, load: Callable[[], Row] | None = None) -> None:
        self._row = row
        self._load = load
        self.body = body

    @property
    def row(self) -> Row:
        if self._row is None:
            assert self._load is not None
            self._row = self._load()
        return self._row


@dataclass(frozen=True)
class Versioned:
    """A read's answer: the tenant's publish version of the table, and the rows.

    ``rows`` is None when the caller already holds ``version`` (a 304).
    """

    version: str
    rows: list[ServedRow] | None


class ApiReader(Protocol):
    kind: Target

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def find_key(self, key: str) -> KeyGrant | None:
        """The active key ``key`` (not revoked; expiry is the caller's check)."""
        ...

    async def touch_key(self, grant: KeyGrant) -> None:
        """Record the key's use (throttled: at most once a minute per key)."""
        ...

    async def list_rows(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        equals: Mapping[str, object] | None,
        at_least: Mapping[str, object] | None,
        after: Sequence[object] | None,
        limit: int,
        unless_version: Collection[str],
    ) -> Versioned: ...

    async def get_row(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        key: Mapping[str, object],
        unless_version: Collection[str],
        primary: bool = False,
    ) -> Versioned:
        """``primary``: a read through SQL goes to the primary even when published rows
        are read from a replica (a review decision checks the version it records)."""
        ...

    async def ready(self) -> datetime:
        """Latest publish time, after checking the data path; StoreUnavailable if not ready."""
        ...

    def memory_stats(self) -> dict[str, float]:
        """Gauges of the rows this process holds in memory, for /metrics."""
        ...


def api_reader(settings: Settings) -> ApiReader:
    """The reader for ``settings.target``: the only place the API makes that choice."""
    if settings.target is Target.POSTGRES:
        return PostgresReader(settings)
    return EmbeddedReader(settings)


class _Toucher:
    """Remembers when each key's use was last written, so most requests write nothing."""

    def __init__(self) -> None:
        self._written: dict[str, float] = {}

    def due(self, key_hash: str) -> bool:
        now = time.monotonic()
        last = self._written.get(key_hash)
        if last is not None and now - last < TOUCH_EVERY_S:
            return False
        if len(self._written) > 100_000:
            self._written.clear()
        self._written[key_hash] = now
        return True


# -- Postgres ------------------------------------------------------------------------


class PostgresReader:
    """Reads as the API's login role; see the module docstring."""

    kind = Target.POSTGRES

    def __init__(self, settings: Settings, *, max_size: int = 8) -> None:
        self._settings = settings
        self._timeout = settings.api_db_timeout_s
        self._touch = _Toucher()
        self._pool: AsyncConnectionPool | None = None
        self._read_pool: AsyncConnectionPool | None = None
        """Published rows' reads: the replica's pool, or the primary's without one."""
        self._replica = settings.api_replica_url is not None
        self._replica_waits = 0
        self._replica_wait_s = 0.0
        self._max_size = max_size
        self._feed: ChangeFeed | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._snapshots: OrderedDict[tuple[str, str], tuple[Stamp, _Snapshot]] = OrderedDict()
        self._loads: dict[tuple[str, str], asyncio.Future[_Snapshot]] = {}
        # Two copies load at once: more only share the same two cores, and hold memory.
        self._load_threads = anyio.CapacityLimiter(2)
        self._failed: dict[tuple[str, str], float] = {}
        self._sizes: dict[tuple[str, str], int] = {}
        """Rows of each tenant's last copy: what a new one is admitted for (``_admits``)."""
        self._built = 0
        self._nothing: dict[str, Stamp] = {}
        self._keys: dict[str, tuple[Stamp, float, KeyGrant]] = {}

    def _new_pool(self, url: str, name: str) -> AsyncConnectionPool:
        ms = int(self._timeout * 1000)
        return AsyncConnectionPool(
            url,
            min_size=1,
            max_size=self._max_size,
            timeout=self._timeout,
            name=name,
            open=False,
            configure=_configure,
            kwargs={
                "connect_timeout": max(1, round(self._timeout)),
                "application_name": name,
                # Server-side bounds: a statement, a lock wait, an abandoned transaction.
                "options": f"-c statement_timeout={ms} -c lock_timeout={max(1, ms // 2)}"
                f" -c idle_in_transaction_session_timeout={ms * 5}",
            },
        )

    async def open(self) -> None:
        url = self._settings.api_postgres_url
        if url is None:
            return
        self._pool = self._read_pool = self._new_pool(url, "bizos-api")
        # Not waiting: the app starts while Postgres is down; /ready says 503 meanwhile.
        await self._pool.open(wait=False)
        read_url = self._settings.api_read_url
        if self._replica and read_url is not None:
            self._read_pool = self._new_pool(read_url, "bizos-api-replica")
            await self._read_pool.open(wait=False)
        if self._settings.api_snapshots:
            self._feed = ChangeFeed(url, self._timeout)
            self._feed_task = asyncio.create_task(self._feed.run(), name="bizos-change-feed")

    async def close(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        if self._read_pool is not None and self._read_pool is not self._pool:
            await self._read_pool.close()
        if self._pool is not None:
            await self._pool.close()

    def in_memory(self, table: str, tenant_id: str) -> bool:
        """Whether the tenant's rows of ``table`` are served from memory now."""
        held = self._snapshots.get((table, tenant_id))
        topic = publish_topic(table, tenant_id)
        return held is not None and self._feed is not None and self._feed.holds(held[0], topic)

    @property
    def change_feed(self) -> ChangeFeed | None:
        """The feed keeping this process's copies current; None when they are off."""
        return self._feed

    def _need_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise StoreUnavailable(
                "BIZOS_API_DATABASE_URL is not set: the API reads only as its own login role;"
                " create it with `bizos keys api-role` and set the URL it prints"
            )
        return self._pool

    async def _run(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Any],
        *,
        timeout: float | None = None,
        replica: bool = False,
    ) -> Any:
        """``work`` on a pooled connection, bounded in time; failures are StoreUnavailable.

        ``replica``: on the read pool (the replica's when one is set), for reads of
        published rows only. The client-side bound covers what server-side timeouts
        cannot: a server (or network) that stops answering altogether.
        """
        pool = self._need_pool()
        if replica and self._read_pool is not None:
            pool = self._read_pool

        async def attempt() -> Any:
            async with pool.connection() as conn:
                return await work(conn)

        # A task the request stops waiting for, rather than cancels in place: psycopg
        # answers a cancellation by asking the server to cancel and waiting for it,
        # which against a frozen server takes as long as the freeze. The task is
        # cancelled and cleans up on its own; the request answers 503 now.
        task = asyncio.ensure_future(attempt())
        try:
            bound = (timeout or self._timeout) * 1.5 + 0.5
            done, _ = await asyncio.wait({task}, timeout=bound)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_forget)
            raise StoreUnavailable("Postgres did not answer in time")
        try:
            return task.result()
        except PoolTimeout as exc:
            raise StoreUnavailable("no Postgres connection in time") from exc
        except psycopg.errors.QueryCanceled as exc:
            raise StoreUnavailable(f"Postgres gave up: {exc.diag.message_primary}") from exc
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreUnavailable("a lock on the serving tables is held too long") from exc
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable) as exc:
            raise StoreUnavailable(f"the API role cannot read: {exc.diag.message_primary}") from exc
        except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName) as exc:
            raise StoreUnavailable(
                "the serving or key schema is missing or behind: run `bizos db upgrade`"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc
        except psycopg.DataError as exc:
            # Inputs are checked before they get here; a value Postgres still refuses is
            # the caller's, and says nothing about the server being down.
            raise ValueError(f"a value Postgres refused: {exc.diag.message_primary}") from exc

    async def find_key(self, key: str) -> KeyGrant | None:
        """The key's grant: from memory while the change feed has heard of no key change
        since it was checked (and for at most ``KEY_MAX_AGE_S``), else from
        ``ops.api_key_find``. A revoke waits until every process has dropped the key
        (opsdb/key_changes.py), so it holds from the next request. Unknown keys are
        not remembered: a key created a moment ago works at once."""
        key_hash = api_keys.hash_key(key)
        feed = self._feed
        cached = self._keys.get(key_hash)
        if (
            cached is not None
            and feed is not None
            and feed.holds(cached[0], KEYS_TOPIC)
            and time.monotonic() - cached[1] < KEY_MAX_AGE_S
        ):
            return cached[2]
        stamp = feed.stamp(KEYS_TOPIC) if feed is not None else None
        checked = time.monotonic()

        async def work(conn: psycopg.AsyncConnection[Any]) -> KeyGrant | None:
            cur = await conn.execute(
                "SELECT tenant_id, key_prefix, scopes, expires_at FROM ops.api_key_find(%s)",
                [key_hash],
            )
            row = await cur.fetchone()
            return None if row is None else api_keys.grant_from(key_hash, *row)

        found: KeyGrant | None = await self._run(work)
        if found is not None and stamp is not None:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[key_hash] = (stamp, checked, found)
            self._warm(found.tenant_id)
        return found

    async def touch_key(self, grant: KeyGrant) -> None:
        if not self._touch.due(grant.key_hash):
            return

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT ops.api_key_touch(%s)", [grant.key_hash])

        try:
            await self._run(work)
        except StoreUnavailable as exc:  # a missed last-used time never fails a request
            log.warning("could not record the use of key %s: %s", grant.key_prefix, exc)

    async def _versioned(
        self,
        contract: TableContract,
        encode: Encoder,
        tenant_id: str,
        query: str,
        params: Mapping[str, object],
        unless_version: Collection[str],
        *,
        replica: bool = True,
    ) -> Versioned:
        async def work(conn: psycopg.AsyncConnection[Any]) -> Versioned:
            # One round trip: a simple-protocol query of two statements, which Postgres
            # runs as one implicit transaction, so the tenant set (SET LOCAL) holds for
            # the read and ends with it. The version and the rows come from one
            # statement (a lateral join): one snapshot. Parameters are bound on the
            # client (the simple protocol takes none). Four round trips (BEGIN,
            # set_config, the read, COMMIT) held a pooled connection four times as long
            # (bench/RESULTS.md); psycopg's pipeline mode costs more CPU than it saves
            # on a local network. The rows are read even when the client holds the
            # version: a 304 saves the body, not the query.
            cur = psycopg.AsyncClientCursor(conn, row_factory=dict_row)
            await cur.execute(
                "SELECT set_config(%(__setting)s, %(__tenant)s, true);"
                " SELECT v.publish_version AS __version, r.* FROM"
                " (SELECT serving.publish_version(%(__table)s)) v"
                f" LEFT JOIN LATERAL ({query}) r ON true ORDER BY {order_clause(contract)}",
                {
                    **params,
                    "__setting": TENANT_SETTING,
                    "__tenant": tenant_id,
                    "__table": contract.name,
                },
            )
            if not cur.nextset():
                raise StoreUnavailable("Postgres answered the read without its rows")
            joined = await cur.fetchall()
            found = [joined[0]["__version"]] if joined else None
            # With no row, the lateral join still gives the version, with NULL columns.
            rows = [
                {k: v for k, v in r.items() if k != "__version"}
                for r in joined
                if any(r[c] is not None for c in contract.primary_key)
            ]
            version = str(found[0]) if found and found[0] is not None else "0"
            if version == "0":
                # Nothing for this tenant: "not ready" if nobody ever published.
                published = await conn.execute(
                    "SELECT serving.last_published_at(%s)", [contract.name]
                )
                last = await published.fetchone()
                if last is None or last[0] is None:
                    raise NothingPublished(f"nothing has been published to {contract.name} yet")
            if version in unless_version:
                return Versioned(version, None)
            return Versioned(version, [ServedRow(r, encode(r)) for r in rows])

        result: Versioned = await self._run(work, replica=replica)
        return result

    async def list_rows(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        equals: Mapping[str, object] | None,
        at_least: Mapping[str, object] | None,
        after: Sequence[object] | None,
        limit: int,
        unless_version: Collection[str],
    ) -> Versioned:
        snap = await self._snapshot(contract, tenant_id)
        if snap is not None:
            if snap.version in unless_version:
                return Versioned(snap.version, None)
            return select_rows(
                snap, encode, equals=equals, at_least=at_least, after=after, limit=limit
            )
        where, params = row_filter(
            contract,
            tenant_id=tenant_id,
            equals=equals,
            at_least=at_least,
            after=after,
            placeholder=_pg_placeholder,
        )
        query = (
            f"SELECT {select_list(contract)} FROM serving.{contract.name} WHERE {where}"
            f" ORDER BY {order_clause(contract)} LIMIT %(limit)s"
        )
        return await self._versioned(
            contract, encode, tenant_id, query, {**params, "limit": limit}, unless_version
        )

    async def get_row(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        key: Mapping[str, object],
        unless_version: Collection[str],
        primary: bool = False,
    ) -> Versioned:
        snap = await self._snapshot(contract, tenant_id)
        if snap is not None:
            if snap.version in unless_version:
                return Versioned(snap.version, None)
            return select_row(snap, encode, key)
        where, params = key_filter(
            contract, tenant_id=tenant_id, key=key, placeholder=_pg_placeholder
        )
        query = f"SELECT {select_list(contract)} FROM serving.{contract.name} WHERE {where}"
        return await self._versioned(
            contract, encode, tenant_id, query, params, unless_version, replica=not primary
        )

    async def _snapshot(self, contract: TableContract, tenant_id: str) -> _Snapshot | None:
        """The tenant's rows of ``contract`` in memory, current by the change feed (an
        empty copy when the tenant has none; NothingPublished, also remembered, when no
        tenant has any); None when the feed is down: the caller reads through SQL."""
        feed = self._feed
        if feed is None:
            return None
        slot = (contract.name, tenant_id)
        topic = publish_topic(contract.name, tenant_id)
        held = self._snapshots.get(slot)
        if held is not None and feed.holds(held[0], topic):
            self._snapshots.move_to_end(slot)
            held[1].used = time.monotonic()
            return held[1]
        self._raise_if_nothing_published(feed, contract)
        running = self._loads.get(slot)
        if running is not None and not running.done():
            return None  # loading already: read through SQL meanwhile, without waiting
        task = self._start_load(contract, tenant_id)
        if task is None:
            return None
        try:
            return await asyncio.wait_for(
                asyncio.shield(task), timeout=min(self._timeout, LOAD_WAIT_S)
            )
        except TimeoutError:
            return None
        except NothingPublished:
            raise
        except StoreUnavailable:
            return None  # the SQL read answers for the store, with its own error

    def _start_load(
        self, contract: TableContract, tenant_id: str
    ) -> asyncio.Future[_Snapshot] | None:
        """The load of the tenant's copy of ``contract``, started unless one is running.

        One load per tenant and table at a time, in a worker thread: requests wait for
        it briefly (a small tenant's copy is there at once), then read through SQL
        while it goes on, so a large tenant's first seconds cost no latency.
        """
        feed = self._feed
        if feed is None:
            return None
        slot = (contract.name, tenant_id)
        task = self._loads.get(slot)
        if task is None or task.done():
            failed = self._failed.get(slot)
            if failed is not None and time.monotonic() - failed < LOAD_RETRY_S:
                return None
            held = {k: s for k, (_, s) in self._snapshots.items()}
            loading = [k for k, t in self._loads.items() if not t.done()]
            if not _may_copy(slot, held, loading, self._sizes, self._settings):
                return None  # the copies held are in use: this tenant reads through SQL
            topic = publish_topic(contract.name, tenant_id)
            stamp, table_stamp = feed.stamp(topic), feed.stamp(contract.name)
            if stamp is None or table_stamp is None:
                return None
            task = asyncio.ensure_future(self._keep(contract, tenant_id, stamp, table_stamp))
            task.add_done_callback(_forget)
            self._loads[slot] = task
        return task

    def _warm(self, tenant_id: str) -> None:
        """Start loading the tenant's copies of the hot tables (``preencode``) that this
        process does not hold, when one of its keys is first seen: by the time its
        next requests come, they are served from memory."""
        feed = self._feed
        if feed is None:
            return
        for contract in HOT_CONTRACTS.values():
            held = self._snapshots.get((contract.name, tenant_id))
            nothing = self._nothing.get(contract.name)
            if held is not None and feed.holds(held[0], publish_topic(contract.name, tenant_id)):
                continue
            if nothing is not None and feed.holds(nothing, contract.name):
                continue
            self._start_load(contract, tenant_id)

    def memory_stats(self) -> dict[str, float]:
        """Copies held, their rows and loads running, for /metrics."""
        loading = sum(1 for task in self._loads.values() if not task.done())
        stats = _memory_stats([s for _, s in self._snapshots.values()], loading, self._built)
        if self._replica:
            # Copies that found the replica behind the primary, and how long they waited.
            stats["bizos_api_replica_waits_total"] = self._replica_waits
            stats["bizos_api_replica_wait_seconds_total"] = round(self._replica_wait_s, 6)
        return stats

    async def _keep(
        self, contract: TableContract, tenant_id: str, stamp: Stamp, table_stamp: Stamp
    ) -> _Snapshot:
        slot = (contract.name, tenant_id)
        try:
            snap = await self._load(contract, tenant_id)
        except NothingPublished:
            self._nothing[contract.name] = table_stamp
            raise
        except StoreUnavailable as exc:
            # Requests read through SQL meanwhile; not retried at once, or every request
            # would start a whole copy again (each one a connection and the tenant's rows).
            self._failed[slot] = time.monotonic()
            log.warning(
                "could not load %s of %s into memory (retried in %.0f s): %s",
                contract.name,
                tenant_id,
                LOAD_RETRY_S,
                exc,
            )
            raise
        self._failed.pop(slot, None)
        self._built += 1
        self._sizes[slot] = len(snap)
        budget = self._settings.api_snapshot_max_rows
        others = [s for k, (_, s) in self._snapshots.items() if k != slot]
        if not _admits(others, budget, len(snap)):
            # Larger than its estimate, or others came into use while it loaded: it is
            # not kept (its size is now known, so it is not loaded again for nothing).
            self._snapshots.pop(slot, None)
            return snap
        self._snapshots[slot] = (stamp, snap)
        self._snapshots.move_to_end(slot)
        total = sum(len(s) for _, s in self._snapshots.values())
        while total > budget and len(self._snapshots) > 1:
            _, (_, oldest) = self._snapshots.popitem(last=False)
            total -= len(oldest)
        return snap

    def _raise_if_nothing_published(self, feed: ChangeFeed, contract: TableContract) -> None:
        """NothingPublished without a round trip while no publish of the table has
        happened since the database said so (a store upgraded, not yet republished)."""
        nothing = self._nothing.get(contract.name)
        if nothing is not None and feed.holds(nothing, contract.name):
            raise NothingPublished(f"nothing has been published to {contract.name} yet")

    async def _load(self, contract: TableContract, tenant_id: str) -> _Snapshot:
        """Read a tenant's published rows and their version in one snapshot, through
        RLS as the API role: version "0" and no rows when the tenant has no publish of
        the table, NothingPublished when nobody has.

        In a worker thread on its own connection, a few at a time: decoding a large
        tenant's rows and encoding their bodies never runs on the event loop, where it
        stalled every request of the process while a copy loaded.
        """
        url = self._settings.api_read_url
        if url is None:
            raise StoreUnavailable("BIZOS_API_DATABASE_URL is not set")
        # On a replica: the primary's WAL position now, after the copy's stamp was taken
        # (``_start_load``), so every publish the stamp has counted committed before it.
        min_lsn = await self._primary_lsn() if self._replica else None
        work = functools.partial(_load_copy, url, contract, tenant_id, self._timeout, min_lsn)
        try:
            async with asyncio.timeout(LOAD_TIMEOUT_S * 1.5 + REPLICA_WAIT_S):
                snap, waited = await anyio.to_thread.run_sync(
                    work, abandon_on_cancel=True, limiter=self._load_threads
                )
        except TimeoutError:
            raise StoreUnavailable(f"loading {contract.name} took too long") from None
        if waited is not None:
            self._replica_waits += 1
            self._replica_wait_s += waited
        return snap

    async def _primary_lsn(self) -> str:
        async def work(conn: psycopg.AsyncConnection[Any]) -> str:
            cur = await conn.execute("SELECT pg_current_wal_lsn()::text")
            row = await cur.fetchone()
            assert row is not None
            return str(row[0])

        lsn: str = await self._run(work)
        return lsn

    async def ready(self) -> datetime:
        """The data path as requests use it: the reader's SELECT on every serving table,
        the key lookup function, and the latest publish."""

        async def keys(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                cur = await conn.execute("SELECT max(version_num) FROM ops.alembic_version_ops")
                found = await cur.fetchone()
                _check_tree("ops", found[0] if found else None)
                await conn.execute("SELECT FROM ops.api_key_find('') LIMIT 0")

        async def rows(conn: psycopg.AsyncConnection[Any]) -> datetime | None:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT max(version_num) FROM serving.alembic_version_serving"
                )
                found = await cur.fetchone()
                _check_tree("serving", found[0] if found else None)
                for name in SERVING_TABLES:
                    # No tenant set: RLS returns nothing, but a missing grant still fails.
                    await conn.execute(f"SELECT FROM serving.{name} LIMIT 0")
                cur = await conn.execute("SELECT serving.last_published_at(NULL)")
                row = await cur.fetchone()
            return None if row is None else row[0]

        await self._run(keys)
        last: datetime | None = await self._run(rows, replica=True)
        if last is None:
            raise NothingPublished("nothing has been published to Postgres yet")
        return last


def _identity(path: str | Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _settled(token: tuple[tuple[int, int, int] | None, ...]) -> bool:
    """Every file's mtime is over 50 ms old: a later write will show a different one."""
    horizon = time.time_ns() - 50_000_000
    return all(part is None or part[1] < horizon for part in token)


def _forget(task: asyncio.Future[Any]) -> None:
    """Collect an abandoned task's outcome, so it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def _load_copy(
    url: str, contract: TableContract, tenant_id: str, timeout: float, min_lsn: str | None = None
) -> tuple[_Snapshot, float | None]:
    """``PostgresReader._load``'s work, in its thread (see there): the copy, and with
    ``min_lsn`` (on a replica) the seconds waited for the replica to replay up to it,
    None when it had already."""
    columns = contract.served_columns
    waited: float | None = None
    try:
        with psycopg.connect(
            url,
            connect_timeout=max(1, round(timeout)),
            application_name="bizos-api-load",
            options=f"-c statement_timeout={LOAD_TIMEOUT_S * 1000}"
            f" -c lock_timeout={max(1, int(timeout * 500))}",
        ) as conn:
            if min_lsn is not None:
                waited = _wait_for_replay(conn, min_lsn)
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, tenant_id])
                found = conn.execute(
                    "SELECT serving.publish_version(%s), serving.last_published_at(%s)",
                    [contract.name, contract.name],
                ).fetchone()
                if found is None or found[1] is None:
                    raise NothingPublished(f"nothing has been published to {contract.name} yet")
                if found[0] is None:
                    empty = contract.served_schema.empty_table()
                    return _snapshot_of("0", contract, empty), waited
                rows = conn.execute(
                    f"SELECT {select_list(contract)} FROM serving.{contract.name}"
                    f" WHERE tenant_id = %s ORDER BY {order_clause(contract)}",
                    [tenant_id],
                ).fetchall()
                version = str(found[0])
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot load {contract.name}: {type(exc).__name__}") from exc
    table = pa.Table.from_pydict(
        {c: [r[i] for r in rows] for i, c in enumerate(columns)},
        schema=contract.served_schema,
    )
    del rows
    return _snapshot_of(version, contract, table), waited


def _wait_for_replay(conn: psycopg.Connection[Any], min_lsn: str) -> float | None:
    """Wait until the replica has replayed the primary's WAL up to ``min_lsn``; the
    seconds waited, None if it had already.

    A notification reaches the API from the primary as soon as the publish commits;
    the replica may not have replayed that commit yet, and a copy read then would keep
    the old rows, as current, until the next publish. Each check is its own statement
    outside the copy's transaction, so the copy's snapshot is taken after replay.
    Not in recovery (a primary, or a promoted replica): nothing to wait for.
    """
    conn.autocommit = True
    started = time.monotonic()
    pause = 0.005
    checks = 0
    while True:
        row = conn.execute(
            "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, true),"
            " pg_last_wal_replay_lsn()::text",
            [min_lsn],
        ).fetchone()
        assert row is not None
        if row[0]:
            conn.autocommit = False
            return time.monotonic() - started if checks else None
        checks += 1
        if time.monotonic() - started > REPLICA_WAIT_S:
            raise StoreUnavailable(
                f"the replica has replayed up to {row[1]}, behind the primary's {min_lsn},"
                f" for over {REPLICA_WAIT_S:.0f} s"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _memory_stats(snapshots: Sequence[_Snapshot], loading: int, built: int) -> dict[str, float]:
    return {
        "bizos_api_snapshots": len(snapshots),
        "bizos_api_snapshot_rows": sum(len(s) for s in snapshots),
        "bizos_api_snapshot_loads_running": loading,
        # Copies made since the start: growing with requests means they evict each other.
        "bizos_api_snapshot_builds_total": built,
    }


def _file_version(st: os.stat_result) -> str:
    """A served file's version: its identity (a publish replaces the file whole)."""
    return f"{st.st_ino:x}.{st.st_mtime_ns:x}.{st.st_size:x}"


def _check_columns(contract: TableContract, path: Path, names: Collection[str]) -> None:
    missing = [c for c in contract.served_columns if c not in names]
    if missing:
        # Written by an older release, before a column was added: the next publish of
        # the tenant rewrites it (the embedded store's "migration").
        raise StoreUnavailable(
            f"{contract.name}/{path.name} predates columns {missing[:3]}: republish the tenant"
        )


def _file_rows(path: Path) -> int:
    return int(pq.read_metadata(path).num_rows)


def _admits(held: Sequence[_Snapshot], budget: int, incoming: int, *, coming: int = 0) -> bool:
    """Whether a copy of ``incoming`` rows (as many as its last one, or an estimate)
    may be made: it fits beside the copies read in the last ``ADMIT_IDLE_S`` (those
    idle longer are evicted first, oldest first) and the ``coming`` rows of copies
    being made, or no copy is in use or coming."""
    now = time.monotonic()
    in_use = sum(len(s) for s in held if now - s.used < ADMIT_IDLE_S)
    return in_use + coming == 0 or in_use + coming + incoming <= budget


def _may_copy(
    slot: tuple[str, str],
    held: Mapping[tuple[str, str], _Snapshot],
    making: Collection[tuple[str, str]],
    sizes: Mapping[tuple[str, str], int],
    settings: Settings,
) -> bool:
    """``_admits`` for a copy of ``slot``, beside the copies ``held`` and those being
    made (``making``), each counted at its last size or an estimate."""
    others = [s for k, s in held.items() if k != slot]
    coming = sum(_estimate(sizes, k) for k in making if k != slot)
    return _admits(others, settings.api_snapshot_max_rows, _estimate(sizes, slot), coming=coming)


def _estimate(sizes: Mapping[tuple[str, str], int], slot: tuple[str, str]) -> int:
    """Rows of the slot's last copy, else the mean of the copies made so far."""
    known = sizes.get(slot)
    if known is not None:
        return known
    return sum(sizes.values()) // len(sizes) if sizes else 0


def _check_tree(tree: str, current: str | None) -> None:
    """StoreUnavailable unless the tree is at this code's head (the API cannot migrate)."""
    state = migrations.TreeStatus(tree, current, migrations.head(tree)).state
    if state == "ahead":
        raise StoreUnavailable(
            f"the {tree} schema is at {current}, which this version of the platform does not"
            " know: it was migrated by a newer release"
        )
    if state != "current":
        raise StoreUnavailable(f"the {tree} schema is {state}: run `bizos db upgrade`")


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Every read transaction is one snapshot: the version and the rows agree.

    Autocommit, so a statement outside ``conn.transaction()`` can never leave a
    transaction (and its SET LOCAL tenant) open on a pooled connection.
    """
    await conn.set_autocommit(True)
    await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)


def _pg_placeholder(name: str) -> str:
    return f"%({name})s"


# -- embedded ------------------------------------------------------------------------


class _Desc:
    """Wraps a value so that it sorts in reverse: for descending order columns."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _sort_key(contract: TableContract, values: Sequence[object]) -> tuple[Any, ...]:
    """Python sort key of a position; a prefix of the order columns gives a prefix key."""
    key = []
    for c, v in zip(contract.order_columns, values, strict=False):
        if v is None:
            v = contract.null_sorts_as(c)
        key.append(_Desc(v) if contract.descending(c) else v)
    return tuple(key)


@dataclass
class _Snapshot:
    """One tenant's rows of one table at one file version, in API order.

    Kept as the Arrow table (compact), with the order and key columns as Python
    values for bisecting and lookups. Other columns become Python lists when a
    filter first needs them; a row becomes a dict and its JSON body when first
    served, and the body is kept. Building one costs the key columns, not the rows.
    """

    version: str
    contract: TableContract
    table: pa.Table | None
    by_key: dict[tuple[object, ...], int] | None
    """Row index by key; None for a copy made for one request (looked up in Arrow)."""
    encoded: list[bytes] | None = None
    """Every row's body by the contract's hot encoder (``preencode``), in row order."""
    columns: dict[str, list[Any]] = field(default_factory=dict)
    bodies: dict[tuple[int, int], bytes] = field(default_factory=dict)
    rows: dict[int, Row] = field(default_factory=dict)
    _order_keys: list[tuple[Any, ...]] | None = None
    used: float = field(default_factory=time.monotonic)
    """When a request last read it (``ADMIT_IDLE_S``)."""

    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def index_of(self, key: tuple[object, ...]) -> int | None:
        """The row with this key (the contract's key without the tenant), if any."""
        if self.by_key is not None:
            return self.by_key.get(key)
        if self.table is None:
            return None
        columns = [c for c in self.contract.primary_key if c != "tenant_id"]
        mask = None
        for column, value in zip(columns, key, strict=True):
            equal = pc.equal(self.table.column(column), pa.scalar(value))
            mask = equal if mask is None else pc.and_(mask, equal)
        found = pc.indices_nonzero(mask) if mask is not None else None
        return None if found is None or len(found) == 0 else int(found[0].as_py())

    @property
    def order_keys(self) -> list[tuple[Any, ...]]:
        """Sort keys in API order, made on the first paged read (a lookup needs none).

        The publisher writes the file in API order; should it not be, the snapshot is
        sorted here once and its indexes rebuilt.
        """
        if self._order_keys is None:
            contract = self.contract
            values = [self.column(c) for c in contract.order_columns]
            keys = [_sort_key(contract, v) for v in zip(*values, strict=True)]
            if self.table is not None and any(keys[i + 1] < keys[i] for i in range(len(keys) - 1)):
                ordered = self.table.sort_by(
                    [
                        (c, "descending" if contract.descending(c) else "ascending")
                        for c in contract.order_columns
                    ]
                )
                rebuilt = _snapshot_of(
                    self.version, contract, ordered, keep=self.by_key is not None
                )
                self.table, self.by_key = rebuilt.table, rebuilt.by_key
                self.encoded = rebuilt.encoded
                self.columns.clear()
                self.bodies.clear()
                self.rows.clear()
                values = [self.column(c) for c in contract.order_columns]
                keys = [_sort_key(contract, v) for v in zip(*values, strict=True)]
            self._order_keys = keys
        return self._order_keys

    def column(self, name: str) -> list[Any]:
        if self.table is None:  # others published this table; this tenant has no rows
            return []
        found = self.columns.get(name)
        if found is None:
            found = self.columns[name] = self.table.column(name).to_pylist()
        return found

    def row(self, index: int) -> Row:
        found = self.rows.get(index)
        if found is None:
            assert self.table is not None
            found = self.rows[index] = self.table.slice(index, 1).to_pylist()[0]
        return found

    def body(self, index: int, encode: Encoder) -> bytes:
        if self.encoded is not None and PREENCODED.get(self.contract.name) is encode:
            return self.encoded[index]
        memo = (index, id(encode))
        found = self.bodies.get(memo)
        if found is None:
            found = self.bodies[memo] = encode(self.row(index))
        return found


def _equal_prefix(
    contract: TableContract, equals: Mapping[str, object] | None
) -> tuple[object, ...]:
    """The values ``equals`` fixes for the leading order columns, in order (maybe none)."""
    prefix: list[object] = []
    for column in contract.order_columns:
        if not equals or column not in equals or equals[column] is None:
            break
        prefix.append(equals[column])
    return tuple(prefix)


def _snapshot_of(
    version: str, contract: TableContract, table: pa.Table, *, keep: bool = True
) -> _Snapshot:
    """Index a tenant's table by key and, for a hot contract, encode every row now.

    Runs in a worker thread (a build never runs on the event loop). Encoding all rows
    up front costs a few microseconds a row once per publish, where encoding on first
    read cost a request most of its time: reads of random leads nearly always meet a
    row for the first time. A copy for one request (``keep=False``: the budget is
    full) is neither indexed nor encoded: it answers from Arrow and encodes what it
    serves.
    """
    if not keep:
        return _Snapshot(version, contract, table, None)
    key_columns = [c for c in contract.primary_key if c != "tenant_id"]
    key_values = zip(*(table.column(c).to_pylist() for c in key_columns), strict=True)
    by_key = {values: i for i, values in enumerate(key_values)}
    encode = PREENCODED.get(contract.name)
    encoded: list[bytes] | None = None
    if encode is not None:
        encoded = []
        for batch in table.to_batches(max_chunksize=ENCODE_BATCH_ROWS):
            # Copied to exact size: orjson's bytes keep their whole write buffer (about
            # 8 KB a body, measured), ten times the body, for as long as they are held.
            encoded += [memoryview(encode(row)).tobytes() for row in batch.to_pylist()]
    return _Snapshot(version, contract, table, by_key, encoded)


def select_rows(
    snap: _Snapshot,
    encode: Encoder,
    *,
    equals: Mapping[str, object] | None,
    at_least: Mapping[str, object] | None,
    after: Sequence[object] | None,
    limit: int,
) -> Versioned:
    """A page of a snapshot, as ``ApiReader.list_rows`` answers it."""
    contract = snap.contract
    order_keys = snap.order_keys  # also puts an unsorted snapshot in order, once
    start = 0
    if after is not None:
        if len(after) != len(contract.order_columns):
            raise ValueError(f"a position in {contract.name} has the wrong length")
        start = bisect.bisect_right(order_keys, _sort_key(contract, after))
    # Equality on the leading order columns (one lead's history) is a range of the
    # snapshot: start at it and stop after it, instead of scanning the tenant.
    prefix = _equal_prefix(contract, equals)
    end = len(snap)
    if prefix:
        prefix_key = _sort_key(contract, prefix)
        start = max(start, bisect.bisect_left(order_keys, prefix_key))
        end = bisect.bisect_right(order_keys, prefix_key, lo=start, key=lambda k: k[: len(prefix)])
    checks = [(c, v, False) for c, v in (equals or {}).items()]
    checks += [(c, v, True) for c, v in (at_least or {}).items()]
    for column, _, _ in checks:
        if column not in contract.columns:
            raise ValueError(f"unknown column {column!r}")
    tests = [(snap.column(c), v, ge) for c, v, ge in checks]
    picked: list[ServedRow] = []
    for index in range(start, end):
        if all(
            (col[index] is not None and col[index] >= v) if ge else col[index] == v
            for col, v, ge in tests
        ):
            picked.append(_served(snap, index, encode))
            if len(picked) >= limit:
                break
    return Versioned(snap.version, picked)


def select_row(snap: _Snapshot, encode: Encoder, key: Mapping[str, object]) -> Versioned:
    """One row of a snapshot by its key, as ``ApiReader.get_row`` answers it."""
    index = snap.index_of(key_values(snap.contract, key))
    if index is None:
        return Versioned(snap.version, [])
    return Versioned(snap.version, [_served(snap, index, encode)])


def key_values(contract: TableContract, key: Mapping[str, object]) -> tuple[object, ...]:
    """A row's key within its tenant, in the contract's order; ValueError if ``key``
    names other columns."""
    wanted = [c for c in contract.primary_key if c != "tenant_id"]
    if sorted(key) != sorted(wanted):
        raise ValueError(f"the key of {contract.name} is {wanted}")
    return tuple(key[c] for c in wanted)


def _served(snap: _Snapshot, index: int, encode: Encoder) -> ServedRow:
    return ServedRow(None, snap.body(index, encode), functools.partial(snap.row, index))


class _KeyFilePin:
    """One idle connection to ``ops.sqlite`` for the life of the process, so its WAL stays.

    SQLite deletes a WAL file when the last connection to the database closes, and a
    connection holds it open only once it has read. Held, the WAL's identity changes
    only when something is written (what ``EmbeddedReader.find_key`` watches), never
    because a reader came and went. Re-pinned when the file is replaced (a new inode).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None

    def hold(self) -> None:
        try:
            inode = os.stat(self._path).st_ino
        except FileNotFoundError:
            return
        if inode == self._inode:
            return
        with self._lock:
            if inode == self._inode:
                return
            self._close()
            try:
                connection = sqlite3.connect(
                    f"file:{self._path}?mode=ro", uri=True, check_same_thread=False
                )
                connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.Error as exc:  # the lookup itself reports the file's trouble
                log.debug("cannot hold %s open: %s", self._path.name, exc)
                return
            self._connection, self._inode = connection, inode

    def release(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._inode = None, None


class EmbeddedReader:
    """Reads the embedded store's files into per-tenant snapshots; see the module docstring."""

    kind = Target.DUCKDB

    def __init__(self, settings: Settings) -> None:
        from serving.duckdb_store import DuckDBStore

        self._settings = settings
        self._store = DuckDBStore(settings)
        self._touch = _Toucher()
        self._snapshots: OrderedDict[tuple[str, str], _Snapshot] = OrderedDict()
        self._building: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock = threading.Lock()
        # A few threads for SQLite: more only queue on its lock and starve the snapshots.
        self._sqlite_threads = anyio.CapacityLimiter(4)
        self._key_cache: dict[str, tuple[tuple[Any, ...], KeyGrant | None]] = {}
        self._keys_paths: tuple[str, str] | None = None
        self._paths: dict[tuple[str, str], str] = {}
        self._dir_verdicts: dict[str, tuple[tuple[int, int, int], bool]] = {}
        self.key_store_lookups = 0
        self.uncached_reads = 0
        self._sizes: dict[tuple[str, str], int] = {}
        self._built = 0
        # Reads of tenants whose copy is not kept: a few at a time, each a whole file.
        self._file_threads = anyio.CapacityLimiter(2)
        self._key_lookups: dict[tuple[str, tuple[Any, ...]], asyncio.Future[KeyGrant | None]] = {}
        self._pin = _KeyFilePin(migrations.ops_sqlite_path(settings))
        self._key_columns: OrderedDict[tuple[str, str], tuple[str, pa.Table]] = OrderedDict()
        self._key_columns_bytes = 0

    async def open(self) -> None:
        """Check the ops file's schema once, now, rather than in every first request's thread
        at once (dozens of threads each taking the migration lock in turn)."""
        if not migrations.ops_sqlite_path(self._settings).exists():
            return
        try:
            await anyio.to_thread.run_sync(migrations.ensure_current, self._settings, "ops")
        except Exception as exc:  # the requests will answer 503 for it; starting goes on
            log.warning("the ops database is not usable yet: %s", exc)
        await self._warm()

    async def _warm(self) -> None:
        """Build every tenant's snapshot of the hot tables (``preencode``) before the
        process serves, up to ``api_snapshot_max_rows``: no request pays for a cold
        copy, and a server that accepts connections answers at full speed. A tenant
        whose copy does not fit beside those made is read from its file per request.
        A tenant that cannot be read now is left to its first request (which answers
        503)."""
        started = time.monotonic()
        budget = self._settings.api_snapshot_max_rows
        held = 0
        for contract in HOT_CONTRACTS.values():
            table_dir = self._settings.serving_dir / contract.name
            files = sorted(table_dir.glob("tenant=*.parquet")) if table_dir.is_dir() else []
            for path in files:
                tenant_id = path.stem.removeprefix("tenant=")
                try:
                    rows = await anyio.to_thread.run_sync(_file_rows, path)
                except (OSError, pa.ArrowException):
                    rows = 0  # the build below says what is wrong with it
                self._sizes[(contract.name, tenant_id)] = rows
                if held and held + rows > budget:
                    continue
                try:
                    snap = await self._snapshot(
                        contract, tenant_id, self._version(contract, tenant_id)
                    )
                except StoreUnavailable as exc:
                    log.warning("not warming %s of %s: %s", contract.name, tenant_id, exc)
                    continue
                held += len(snap)
        if held:
            log.info(
                "%d rows of published tables in memory in %.1f s",
                held,
                time.monotonic() - started,
            )

    def memory_stats(self) -> dict[str, float]:
        """Snapshots held, their rows and builds running, for /metrics."""
        stats = _memory_stats(
            list(self._snapshots.values()),
            sum(1 for b in self._building.values() if b.locked()),
            self._built,
        )
        return {
            **stats,
            "bizos_api_key_store_lookups_total": self.key_store_lookups,
            "bizos_api_uncached_reads_total": self.uncached_reads,
            "bizos_api_key_columns_bytes": self._key_columns_bytes,
        }

    async def close(self) -> None:
        self._snapshots.clear()
        self._pin.release()

    async def find_key(self, key: str) -> KeyGrant | None:
        """The key's row, from memory while the ops file has not changed since it was read.

        Any write to the file (a revoke, a new key, a last-used time) changes its or its
        WAL's identity, which drops every remembered answer: a revoke holds at once. An
        answer is remembered only when the file's mtime lies safely in the past, so a
        write in the same clock tick as the read cannot go unnoticed.

        Requests that miss together share one lookup, as long as the file has not
        changed since it started (a lookup begun before a revoke answers no request
        that arrives after it). The process keeps one connection to the file open
        (``_KeyFilePin``): SQLite deletes the WAL when its last connection closes, so
        without it each lookup's own connection made and removed the WAL, changing the
        identity the cache watches, and under overlapping requests nothing was ever
        remembered (every request paid a SQLite connection: 2,000 req/s, not 20,000).
        """
        key_hash = api_keys.hash_key(key)
        before = self._keys_token()
        cached = self._key_cache.get(key_hash)
        if cached is not None and cached[0] == before:
            return cached[1]
        slot = (key_hash, before)
        running = self._key_lookups.get(slot)
        if running is None:
            running = self._key_lookups[slot] = asyncio.ensure_future(
                self._look_up_key(key, key_hash, before)
            )
            running.add_done_callback(lambda _: self._key_lookups.pop(slot, None))
        # Shielded: one request going away does not cancel the others' lookup.
        return await asyncio.shield(running)

    async def _look_up_key(
        self, key: str, key_hash: str, before: tuple[tuple[int, int, int] | None, ...]
    ) -> KeyGrant | None:
        self.key_store_lookups += 1
        # SQLite in a thread: the event loop (and /health) never waits on the file.
        found: KeyGrant | None = await anyio.to_thread.run_sync(
            self._find_grant, key, limiter=self._sqlite_threads
        )
        if self._keys_token() == before and _settled(before):
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[key_hash] = (before, found)
        return found

    def _find_grant(self, key: str) -> KeyGrant | None:
        self._pin.hold()
        return api_keys.find_grant(self._settings, key, include_expired=True)

    def _keys_token(self) -> tuple[tuple[int, int, int] | None, ...]:
        if self._keys_paths is None:
            base = migrations.ops_sqlite_path(self._settings)
            self._keys_paths = (str(base), f"{base}-wal")
        return (_identity(self._keys_paths[0]), _identity(self._keys_paths[1]))

    async def touch_key(self, grant: KeyGrant) -> None:
        if not self._touch.due(grant.key_hash):
            return
        try:
            await anyio.to_thread.run_sync(
                api_keys.touch_key,
                self._settings,
                grant.key_hash,
                datetime.now(UTC),
                limiter=self._sqlite_threads,
            )
        except StoreUnavailable as exc:
            log.warning("could not record the use of key %s: %s", grant.key_prefix, exc)

    def _version(self, contract: TableContract, tenant_id: str) -> str:
        """The tenant file's identity; "0" when the tenant has none (NothingPublished if
        nobody has published to the table).

        One ``stat`` of a path kept as text. Without the file, whether the table has
        any tenant's file is remembered for as long as the table's directory keeps its
        identity (a publish renames a file into it, which changes its mtime), rather
        than listing the directory on every request.
        """
        slot = (contract.name, tenant_id)
        path = self._paths.get(slot)
        if path is None:
            from serving.duckdb_store import tenant_file

            if len(self._paths) > 100_000:
                self._paths.clear()
            path = self._paths[slot] = str(
                tenant_file(self._settings.serving_dir, contract.name, tenant_id)
            )
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not self._table_has_files(contract.name, os.path.dirname(path)):
                raise NothingPublished(
                    f"nothing has been published to {contract.name} yet"
                ) from None
            return "0"
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {contract.name}: {exc.strerror}") from exc
        return _file_version(st)

    def _table_has_files(self, table: str, table_dir: str) -> bool:
        identity = _identity(table_dir)
        known = self._dir_verdicts.get(table)
        if identity is not None and known is not None and known[0] == identity:
            return known[1]
        found = identity is not None and any(Path(table_dir).glob("tenant=*.parquet"))
        if identity is not None and _settled((identity,)) and _identity(table_dir) == identity:
            self._dir_verdicts[table] = (identity, found)
        return found

    async def _snapshot(
        self,
        contract: TableContract,
        tenant_id: str,
        version: str,
        key: tuple[object, ...] | None = None,
    ) -> _Snapshot:
        """The tenant's copy, held or made; beyond the copies budget a copy for this
        request only (of the row with ``key`` alone, when given)."""
        slot = (contract.name, tenant_id)
        found = self._snapshots.get(slot)
        if found is not None and found.version == version:
            self._snapshots.move_to_end(slot)
            found.used = time.monotonic()
            return found
        building = [k for k, b in self._building.items() if b.locked()]
        if not _may_copy(slot, self._snapshots, building, self._sizes, self._settings):
            # The copies held are in use: answer from the file, keep nothing; a row
            # by its key from its row group only.
            self.uncached_reads += 1
            read = (
                functools.partial(self._build, contract, tenant_id, keep=False)
                if key is None
                else functools.partial(self._read_row, contract, tenant_id, key)
            )
            return await anyio.to_thread.run_sync(read, limiter=self._file_threads)
        # One build per tenant at a time; the others wait for it instead of repeating it.
        lock = self._building.setdefault(slot, asyncio.Lock())
        async with lock:
            found = self._snapshots.get(slot)
            if found is not None and found.version == self._version(contract, tenant_id):
                return found
            built = await anyio.to_thread.run_sync(self._build, contract, tenant_id)
            self._built += 1
            self._sizes[slot] = len(built)
            self._snapshots[slot] = built
            self._snapshots.move_to_end(slot)
            self._evict()
            return built

    def _build(self, contract: TableContract, tenant_id: str, *, keep: bool = True) -> _Snapshot:
        """Read the tenant's file through one descriptor: its identity and rows agree."""
        from serving.duckdb_store import tenant_file

        path = tenant_file(self._settings.serving_dir, contract.name, tenant_id)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                table = pq.read_table(fh)
        except FileNotFoundError:
            return _Snapshot("0", contract, None, {})
        except (OSError, pa.ArrowException) as exc:
            raise StoreUnavailable(f"cannot read {contract.name}/{path.name}: {exc}") from exc
        _check_columns(contract, path, table.column_names)
        # One chunk per column: a row is sliced out per request, and slicing a column of
        # many chunks (one per row group read) costs several times one of a single chunk.
        served = table.select(list(contract.served_columns)).combine_chunks()
        return _snapshot_of(_file_version(st), contract, served, keep=keep)

    def _read_row(
        self, contract: TableContract, tenant_id: str, key: tuple[object, ...]
    ) -> _Snapshot:
        """The row with ``key`` of the tenant's file, for a read beyond the copies
        budget: the file's key columns (decoded once per file version,
        ``_key_columns_of``), then the one row group holding the row (the publisher
        writes groups of ``ROW_GROUP_ROWS``), not every column of every row. Through
        one descriptor, so the version and the row agree."""
        from serving.duckdb_store import tenant_file

        path = tenant_file(self._settings.serving_dir, contract.name, tenant_id)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                parquet = pq.ParquetFile(fh)
                _check_columns(contract, path, parquet.schema_arrow.names)
                keys = self._key_columns_of(contract, tenant_id, _file_version(st), parquet)
                index = _Snapshot("", contract, keys, None).index_of(key)
                if index is None:
                    return _Snapshot(_file_version(st), contract, None, {})
                group, start = 0, 0
                while start + parquet.metadata.row_group(group).num_rows <= index:
                    start += parquet.metadata.row_group(group).num_rows
                    group += 1
                rows = parquet.read_row_group(group, columns=list(contract.served_columns))
        except FileNotFoundError:
            return _Snapshot("0", contract, None, {})
        except (OSError, pa.ArrowException) as exc:
            raise StoreUnavailable(f"cannot read {contract.name}/{path.name}: {exc}") from exc
        return _Snapshot(_file_version(st), contract, rows.slice(index - start, 1), {key: 0})

    def _key_columns_of(
        self, contract: TableContract, tenant_id: str, version: str, parquet: pq.ParquetFile
    ) -> pa.Table:
        """The key columns of the tenant's file at ``version``: read once per file
        version and kept (up to ``KEY_COLUMNS_MAX_BYTES`` for the process, least
        recently used first out), so a read by key beyond the copies budget decodes
        only the row group holding its row. About 15 bytes a lead, against about
        1.9 KB a lead for a copy."""
        slot = (contract.name, tenant_id)
        with self._lock:
            held = self._key_columns.get(slot)
            if held is not None and held[0] == version:
                self._key_columns.move_to_end(slot)
                return held[1]
        keys = parquet.read(columns=[c for c in contract.primary_key if c != "tenant_id"])
        with self._lock:
            old = self._key_columns.pop(slot, None)
            self._key_columns_bytes -= old[1].nbytes if old is not None else 0
            if keys.nbytes <= KEY_COLUMNS_MAX_BYTES:
                self._key_columns[slot] = (version, keys)
                self._key_columns_bytes += keys.nbytes
            while self._key_columns_bytes > KEY_COLUMNS_MAX_BYTES:
                _, (_, gone) = self._key_columns.popitem(last=False)
                self._key_columns_bytes -= gone.nbytes
        return keys

    def _evict(self) -> None:
        total = sum(len(s) for s in self._snapshots.values())
        while total > self._settings.api_snapshot_max_rows and len(self._snapshots) > 1:
            _, oldest = self._snapshots.popitem(last=False)
            total -= len(oldest)

    async def list_rows(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        equals: Mapping[str, object] | None,
        at_least: Mapping[str, object] | None,
        after: Sequence[object] | None,
        limit: int,
        unless_version: Collection[str],
    ) -> Versioned:
        version = self._version(contract, tenant_id)
        if version in unless_version:
            return Versioned(version, None)
        snap = await self._snapshot(contract, tenant_id, version)
        return select_rows(snap, encode, equals=equals, at_least=at_least, after=after, limit=limit)

    async def get_row(
        self,
        contract: TableContract,
        encode: Encoder,
        *,
        tenant_id: str,
        key: Mapping[str, object],
        unless_version: Collection[str],
        primary: bool = False,
    ) -> Versioned:
        version = self._version(contract, tenant_id)
        if version in unless_version:
            return Versioned(version, None)
        snap = await self._snapshot(contract, tenant_id, version, key_values(contract, key))
        return select_row(snap, encode, key)

    async def ready(self) -> datetime:
        """The latest publish, and every table's views in ``serving.duckdb`` readable."""
        last = await anyio.to_thread.run_sync(self._store.last_published_at)
        await anyio.to_thread.run_sync(self._check_views)
        return last

    def _check_views(self) -> None:
        import duckdb

        from serving.duckdb_store import _attached

        path = self._store.views_path
        if not path.exists():
            return  # made by the first publish; nothing the API reads depends on it
        try:
            with _attached(path) as con:
                con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = 'views'")
        except duckdb.Error as exc:
            raise StoreUnavailable(f"{path.name} is unreadable: {type(exc).__name__}") from exc
