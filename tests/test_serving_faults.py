"""The API under faults: a database that stops answering, and rate limits in Redis.

A frozen database is made with a TCP proxy between the API and Postgres that, when
frozen, keeps the bytes it receives: the server never sees the query, the API never
sees an answer, the connection stays open. That is what a hung server or a network
partition looks like to a client, and only a client-side bound turns it into a 503.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.settings import Settings
from serving.change_feed import CHECK_EVERY_S
from serving.keys import create_key, hash_key
from serving.main import create_app
from serving.publish import publish_lead_scores
from tests.test_serving_api import wait_for_feed, with_api_role
from tests.test_serving_contract import SCORES_URL, lead_scores_table

REDIS_URL = "redis://127.0.0.1:6379/0"


class FreezableProxy:
    """Relays TCP to ``target``; while ``frozen`` is set, holds every byte it receives."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self.frozen.is_set() and not self.stopped.is_set():
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FreezableProxy]:
    parts = urlsplit(pg_url)
    started = FreezableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield started
    started.close()


@pytest.mark.postgres
def test_a_frozen_database_is_503_in_bounded_time_then_recovers(
    pg_settings: Settings, proxy: FreezableProxy
) -> None:
    publish_lead_scores(pg_settings, "acme", lead_scores_table("acme", 20))
    publish_lead_scores(pg_settings, "globex", lead_scores_table("globex", 5))
    api = with_api_role(pg_settings)
    assert api.api_postgres_url is not None
    parts = urlsplit(api.api_postgres_url)
    through_proxy = urlunsplit(
        parts._replace(netloc=parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}")
    )
    api = api.model_copy(
        update={"api_database_url": SecretStr(through_proxy), "api_db_timeout_s": 1.0}
    )
    key = create_key(api, "acme")
    headers = {"X-API-Key": key}
    other = {"X-API-Key": create_key(api, "globex")}
    with TestClient(create_app(api)) as client:
        wait_for_feed(client)
        deadline = time.monotonic() + 10
        reader = client.app.state.reader  # type: ignore[attr-defined]
        while not reader.in_memory("lead_scores", "acme"):  # read in the background
            assert client.get(SCORES_URL, headers=headers).status_code == 200
            assert time.monotonic() < deadline, "acme's rows never reached memory"
            time.sleep(0.01)
        proxy.frozen.set()
        # While a request waits on the frozen database (globex: not in memory yet),
        # /health answers at once.
        waiting = threading.Thread(target=client.get, args=(SCORES_URL,), kwargs={"headers": other})
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert client.get("/health").status_code == 200
        assert time.monotonic() - started < 0.5
        waiting.join(10)
        # acme is answered from memory until the API notices that its change feed is
        # gone (it checks every CHECK_EVERY_S); from then on it reads the database and
        # gets a 503 in bounded time, never a hang.
        deadline = time.monotonic() + CHECK_EVERY_S + 3 * 1.0 + 2
        while True:
            started = time.monotonic()
            response = client.get(SCORES_URL, headers=headers)
            took = time.monotonic() - started
            assert took < 3.5, took
            if response.status_code != 200:
                break
            assert time.monotonic() < deadline, "still served from memory with the feed gone"
            time.sleep(0.2)
        assert response.status_code == 503 and response.headers["Retry-After"]
        started = time.monotonic()
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert time.monotonic() - started < 3.5
        assert client.get("/health").status_code == 200
        proxy.frozen.clear()
        # Back by itself: no restart, at most a few requests on connections it drops.
        deadline = time.monotonic() + 15
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(client.get(SCORES_URL, headers=headers).status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.2)
        assert statuses[-1] == 200, statuses
        assert client.get("/ready").status_code == 200


def test_rate_limits_are_shared_through_redis(settings: Settings) -> None:
    """Two app instances (two workers) share one key's budget when Redis is configured."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 5))
    key = create_key(settings, "acme")
    shared = settings.model_copy(update={"redis_url": REDIS_URL, "api_rate_limit": 2})
    with TestClient(create_app(shared)) as one, TestClient(create_app(shared)) as two:
        # Start at the beginning of a second: the requests fall in one or two windows.
        time.sleep(1.02 - time.time() % 1)
        by_window: dict[int, list[int]] = {}
        for i in range(10):
            window = int(time.time())
            response = (one if i % 2 else two).get(SCORES_URL, headers={"X-API-Key": key})
            by_window.setdefault(window, []).append(response.status_code)
        # Shared: at most 4 a window over both apps (each alone would allow 4 itself).
        assert all(s.count(200) <= 4 for s in by_window.values()), by_window
        assert any(429 in s for s in by_window.values()), by_window
    found = redis.Redis.from_url(REDIS_URL).keys(f"bizos:ratelimit:{hash_key(key)[:32]}:*")
    assert found, "expected the counter in Redis"


def test_rate_limits_fall_back_when_redis_is_down(settings: Settings, tmp_path: Path) -> None:
    publish_lead_scores(settings, "acme", lead_scores_table("acme", 5))
    key = create_key(settings, "acme")
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0", "api_rate_limit": 2})
    with TestClient(create_app(down)) as client:
        statuses = [
            client.get(SCORES_URL, headers={"X-API-Key": key}).status_code for _ in range(12)
        ]
    assert statuses[:4] == [200] * 4 and 429 in statuses, statuses
