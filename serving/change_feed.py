"""Postgres ``NOTIFY`` as the validity of the API's in-memory copies.

The API keeps, per process, each tenant's published rows and the keys it has
checked in memory, so a request on Postgres makes no round trip. What keeps them
current is this feed: one connection per process that ``LISTEN``s on two channels
fed by triggers in the database (so every writer is covered: the pipelines, the
CLI, an operator's psql):

- ``bizos_serving``, payload ``<table>:<tenant>``: a publish (serving_0008, on
  ``serving.publish_log``);
- ``bizos_api_keys``, payload the key's hash: a key revoked, deleted, or its scopes,
  expiry or tenant changed (ops_0004, on ``ops.api_keys``). The feed answers each
  with ``NOTIFY bizos_api_keys_ack`` once the key is dropped, and ``bizos keys
  revoke`` waits for those answers (opsdb/key_changes.py): a revoke holds at once.

A copy is taken with a *stamp* (the feed's connection epoch and the topic's count of
notifications) read before its rows are; it stays valid while the stamp is unchanged.
Postgres delivers a notification after the writer's commit, to every listener that
was listening before it, so a copy whose stamp still holds has seen no commit after
its read began. While the feed is down (connecting, or its connection lost) there is
no stamp: every read goes to the database, as without the feed. The feed checks its
connection every ``CHECK_EVERY_S`` so a dead one is noticed even with no traffic.

A publish reaches every process after the notification's trip, milliseconds after
its commit; until then a request gets the previous version, whole (never a mix: a
copy is read in one transaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

import psycopg

from opsdb.key_changes import ACK_CHANNEL, FEED_APPLICATION, KEYS_CHANNEL

log = logging.getLogger(__name__)

PUBLISH_CHANNEL = "bizos_serving"
KEYS_TOPIC = "keys"
CHECK_EVERY_S = 5.0
ACK_EVERY_S = 0.05
"""How often the task stops waiting to answer key changes taken in by ``poll``."""
RETRY_S = (0.5, 1.0, 2.0, 5.0)

Stamp = tuple[int, int]


def publish_topic(table: str, tenant_id: str) -> str:
    return f"{table}:{tenant_id}"


class ChangeFeed:
    """See the module docstring. ``run`` is the task; ``stamp``/``holds`` are the API."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._timeout = timeout_s
        self._epoch = 0
        self._live = False
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._waiting = False
        self._acks: list[str] = []
        self.ready = asyncio.Event()
        """Set once the first LISTEN is in place (tests wait for it)."""

    @property
    def live(self) -> bool:
        return self._live

    def stamp(self, topic: str) -> Stamp | None:
        """The stamp to keep with a copy read from now on; None while the feed is down."""
        self.poll()
        return (self._epoch, self._counts[topic]) if self._live else None

    def holds(self, stamp: Stamp, topic: str) -> bool:
        """Whether a copy taken at ``stamp`` has seen every change of ``topic`` since."""
        self.poll()
        return self._live and stamp == (self._epoch, self._counts[topic])

    def count(self, topic: str) -> int:
        """Notifications of ``topic`` taken in so far (from any thread; no polling)."""
        return self._counts[topic]

    def poll(self) -> None:
        """Take in notifications already on the socket, without waiting for the feed's
        task to be scheduled: a request right after a commit sees it (one non-blocking
        read). Only while the task waits for notifications, never mid-query."""
        conn = self._conn
        if not self._waiting or conn is None:
            return
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error:
            self._live = False  # lost: read through the database; the task reconnects
            return
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            self._live = False
            return
        while (note := pgconn.notifies()) is not None:
            self._changed(note.relname.decode(), note.extra.decode())

    def _changed(self, channel: str, payload: str) -> None:
        """Count a publish for its ``<table>:<tenant>`` and for its table; a key change
        for every key (and answer it once the count shows)."""
        if channel == KEYS_CHANNEL:
            self._counts[KEYS_TOPIC] += 1
            self._acks.append(payload)
            return
        self._counts[payload] += 1
        self._counts[payload.split(":", 1)[0]] += 1

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff; never raises otherwise."""
        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=max(1, round(self._timeout)),
                    application_name=FEED_APPLICATION,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=2,
                )
            except (psycopg.Error, OSError) as exc:
                await self._backoff(failures, exc)
                failures += 1
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {PUBLISH_CHANNEL}")
                    await conn.execute(f"LISTEN {KEYS_CHANNEL}")
                    # A new epoch: copies stamped before a gap in listening are stale.
                    self._epoch += 1
                    self._live = True
                    self.ready.set()
                    failures = 0
                    log.info("change feed listening")
                    await self._listen(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._live = False
                await self._backoff(failures, exc)
                failures += 1
            finally:
                self._live = False

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        checked = time.monotonic()
        try:
            while True:
                # Notifications that arrive during a query are kept by psycopg and
                # come first in the next round.
                self._waiting = True
                async for note in conn.notifies(timeout=ACK_EVERY_S):
                    self._changed(note.channel, note.payload)
                self._waiting = False
                if self._acks:
                    acks, self._acks = self._acks, []
                    await self._bounded(
                        conn.execute(
                            "SELECT pg_notify(%s, h) FROM unnest(%s::text[]) h", [ACK_CHANNEL, acks]
                        )
                    )
                if time.monotonic() - checked > CHECK_EVERY_S:
                    # Is the connection still there, with nothing heard for a while?
                    await self._bounded(conn.execute("SELECT 1"))
                    checked = time.monotonic()
        finally:
            self._waiting = False
            self._conn = None

    async def _bounded(self, query: Any) -> None:
        """Await a query for at most the timeout; past it the feed is down at once.

        Not ``wait_for``: cancelling a psycopg query in place asks the server to cancel
        and waits for its answer, which from a frozen server never comes."""
        task = asyncio.ensure_future(query)
        done, _ = await asyncio.wait({task}, timeout=self._timeout)
        if not done:
            self._live = False
            task.cancel()
            task.add_done_callback(_forget)
            raise TimeoutError("the change feed's connection stopped answering")
        task.result()

    async def _backoff(self, failures: int, exc: BaseException) -> None:
        wait = RETRY_S[min(failures, len(RETRY_S) - 1)]
        if failures == 0:
            log.warning("change feed down (%s): reading through the database", exc)
        await asyncio.sleep(wait)


def _forget(task: asyncio.Future[Any]) -> None:
    """Collect an abandoned query's outcome, so it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
