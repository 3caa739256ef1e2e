"""A change to API keys, confirmed by every API process before it is reported done.

API processes on Postgres remember the keys they have checked (serving/readers.py)
and drop them when a key change is notified (a trigger on ``ops.api_keys``, ops_0004:
``NOTIFY bizos_api_keys, '<key hash>'``). For a revoke to hold *at once*, the
command that revokes waits until each process listening at the time has answered
``NOTIFY bizos_api_keys_ack, '<key hash>'`` (serving/change_feed.py): when
``bizos keys revoke`` returns, no process will serve the key again.

A process that does not answer within ``CONFIRM_TIMEOUT_S`` (frozen, or cut off) is
named in a warning; its copy of the key also ages out (``KEY_MAX_AGE_S``). Changes
made by hand in SQL are notified by the same trigger but nobody waits for them:
they hold within the notification's trip, milliseconds.

Embedded (SQLite) there is nothing to confirm: the API reads the file itself and
sees any change on its next request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import psycopg

from core.settings import Settings, Target

log = logging.getLogger(__name__)

KEYS_CHANNEL = "bizos_api_keys"
ACK_CHANNEL = "bizos_api_keys_ack"
FEED_APPLICATION = "bizos-api-feed"
CONFIRM_TIMEOUT_S = 3.0
KEY_MAX_AGE_S = 30.0
"""How long an API process trusts a remembered key at most, notified or not."""

T = TypeVar("T")


def confirmed(
    settings: Settings, key_hashes: Callable[[T], Iterable[str]], change: Callable[[], T]
) -> T:
    """Run ``change`` (which commits a change to keys), then wait until every API
    process that was listening has dropped the keys ``key_hashes(result)`` names."""
    if settings.target is not Target.POSTGRES or settings.postgres_url is None:
        return change()
    try:
        listener = psycopg.connect(settings.postgres_url, autocommit=True, connect_timeout=5)
    except psycopg.Error:
        return change()  # the change itself reports the database being unreachable
    with listener:
        listener.execute(f"LISTEN {ACK_CHANNEL}")
        row = listener.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            [FEED_APPLICATION],
        ).fetchone()
        expected = int(row[0]) if row else 0
        result = change()
        wanted = set(key_hashes(result))
        if expected and wanted:
            _await_acks(listener, wanted, expected)
    return result


def _await_acks(listener: psycopg.Connection, wanted: set[str], expected: int) -> None:
    pending = dict.fromkeys(wanted, expected)
    deadline = time.monotonic() + CONFIRM_TIMEOUT_S
    while any(n > 0 for n in pending.values()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.warning(
                "%d API process(es) did not confirm a key change within %.0f s; they stop"
                " trusting the key within %.0f s",
                max(pending.values()),
                CONFIRM_TIMEOUT_S,
                KEY_MAX_AGE_S,
            )
            return
        for note in listener.notifies(timeout=remaining, stop_after=1):
            if note.payload in pending:
                pending[note.payload] -= 1
