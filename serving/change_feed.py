"""Postgres ``NOTIFY`` as the validity of the API's in-memory copies.

The API keeps, per process, each tenant's published rows in memory (snapshots, as
the embedded reader does), so a request on Postgres reads no rows from the database:
its one round trip is the key check, kept per request so that a revoke holds from
the next request with no window. What keeps the rows current is this feed: one
connection per process that ``LISTEN``s on ``bizos_serving``, fed by a trigger on
``serving.publish_log`` (serving_0008; payload ``<table>:<tenant>``), so every
publisher is covered, the pipelines, the CLI and an operator's psql alike.

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
from collections import defaultdict
from typing import Any

import psycopg

log = logging.getLogger(__name__)

PUBLISH_CHANNEL = "bizos_serving"
CHECK_EVERY_S = 5.0
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
            self._changed(note.extra.decode())

    def _changed(self, payload: str) -> None:
        """Count the publish for its ``<table>:<tenant>`` and for its table."""
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
                    application_name="bizos-api-feed",
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
        try:
            while True:
                # Notifications that arrive during the liveness query are kept by
                # psycopg and come first in the next round.
                self._waiting = True
                async for note in conn.notifies(timeout=CHECK_EVERY_S):
                    self._changed(note.payload)
                self._waiting = False
                # No notification for a while: is the connection still there?
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self._timeout)
        finally:
            self._waiting = False
            self._conn = None

    async def _backoff(self, failures: int, exc: BaseException) -> None:
        wait = RETRY_S[min(failures, len(RETRY_S) - 1)]
        if failures == 0:
            log.warning("change feed down (%s): reading through the database", exc)
        await asyncio.sleep(wait)
