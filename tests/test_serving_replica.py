"""The API on a streaming replica (``BIZOS_API_REPLICA_URL``), against a real one.

A throwaway primary and a hot standby streaming from it (tests/postgres.py
``replica_pair``), once per module. Replay on the standby is paused to hold it
behind the primary on demand, so what the API does while its replica lags is
checked, not hoped for: published rows come from the replica, a copy waits for the
replica to replay what the change feed announced, keys and review decisions use the
primary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.contracts.serving_tables import SERVING_TABLES
from core.settings import Settings, get_settings
from serving.api_role import create_api_role
from serving.change_feed import publish_topic
from serving.keys import create_key, revoke_key
from serving.main import create_app
from serving.publish import publish_lead_scores
from serving.readers import PostgresReader
from tests.postgres import can_start_replica, fresh_database, replayed, replica_pair
from tests.test_serving_api import wait_for_feed
from tests.test_serving_contract import SCORES_URL, lead_scores_table

pytestmark = pytest.mark.postgres

ROLE = "bizos_api_replica_test"
LEAD_SCORES = SERVING_TABLES["lead_scores"]


def on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[str, str]]:
    if not can_start_replica():
        pytest.skip("a replica pair needs initdb, pg_ctl and pg_basebackup (PostgreSQL's)")
    with replica_pair() as urls:
        yield urls


class Replica:
    """One database on the primary, its copy on the standby, and the API's settings."""

    def __init__(self, publisher: Settings, api: Settings, primary: str, standby: str) -> None:
        self.publisher = publisher
        self.api = api
        self.primary = primary
        self.standby = standby

    def replayed(self) -> None:
        replayed(self.primary, self.standby)

    @contextmanager
    def held_behind(self) -> Iterator[None]:
        """Replay paused on the standby for the block: it keeps what it had."""
        with psycopg.connect(self.standby, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                yield
            finally:
                conn.execute("SELECT pg_wal_replay_resume()")

    def publish(self, client: TestClient, tenant: str, rows: int) -> None:
        """Publish on the primary and wait until the API's feed has heard of it."""
        feed = client.app.state.reader.change_feed  # type: ignore[attr-defined]
        topic = publish_topic(LEAD_SCORES.name, tenant)
        before = feed.count(topic)
        publish_lead_scores(self.publisher, tenant, lead_scores_table(tenant, rows))
        deadline = time.monotonic() + 5
        while feed.count(topic) == before:
            assert time.monotonic() < deadline, "the API never heard of the publish"
            time.sleep(0.002)


@pytest.fixture
def replica(pair: tuple[str, str], tmp_path: Path) -> Iterator[Replica]:
    primary_server, standby_server = pair
    standby_port = urlsplit(standby_server).port
    assert standby_port is not None
    with fresh_database(primary_server) as primary:
        publisher = get_settings(home=tmp_path / "bizos", database_url=primary)
        api_url = create_api_role(publisher, ROLE)
        api = publisher.model_copy(
            update={
                "api_database_url": SecretStr(api_url),
                "api_replica_url": SecretStr(on_port(api_url, standby_port)),
            }
        )
        replica = Replica(publisher, api, primary, on_port(primary, standby_port))
        replica.replayed()
        yield replica


def until(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_replica_needs_the_primary_for_keys_and_the_feed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BIZOS_API_REPLICA_URL needs BIZOS_API_DATABASE_URL"):
        get_settings(
            home=tmp_path,
            database_url="postgresql://x@127.0.0.1/db",
            api_replica_url="postgresql://x@127.0.0.1:5433/db",
        )


def test_rows_come_from_the_replica_and_a_copy_waits_for_its_replay(replica: Replica) -> None:
    """While the standby is held behind, a publish the feed announced is not served
    (reads go to the replica, which does not have it yet), and the copy being loaded
    waits rather than keep the replica's old rows as current; once replay resumes, the
    new rows are served from memory."""
    publish_lead_scores(replica.publisher, "acme", lead_scores_table("acme", 30))
    key = create_key(replica.publisher, "acme")
    replica.replayed()
    headers = {"X-API-Key": key}
    with TestClient(create_app(replica.api)) as client:
        wait_for_feed(client)
        reader = client.app.state.reader  # type: ignore[attr-defined]
        first = client.get(SCORES_URL, headers=headers, params={"limit": 200})
        assert first.status_code == 200 and len(first.json()["items"]) == 30
        until(lambda: reader.in_memory(LEAD_SCORES.name, "acme"), "the copy never loaded")

        with replica.held_behind():
            replica.publish(client, "acme", 45)
            behind = client.get(SCORES_URL, headers=headers, params={"limit": 200})
            # The primary has 45 rows; the replica, where rows are read, still 30.
            assert behind.status_code == 200, behind.text
            assert behind.headers["etag"] == first.headers["etag"]
            assert len(behind.json()["items"]) == 30
            time.sleep(0.3)  # the copy's load is waiting for replay meanwhile
            assert not reader.in_memory(LEAD_SCORES.name, "acme")

        def caught_up() -> bool:
            got = client.get(SCORES_URL, headers=headers, params={"limit": 200})
            return got.status_code == 200 and len(got.json()["items"]) == 45

        until(caught_up, "the new rows were never served after replay resumed")
        until(lambda: reader.in_memory(LEAD_SCORES.name, "acme"), "no copy of the new rows")
        served = client.get(SCORES_URL, headers=headers, params={"limit": 200})
        assert len(served.json()["items"]) == 45
        metrics = client.get("/metrics").text
        waits = next(
            line for line in metrics.splitlines() if line.startswith("bizos_api_replica_waits")
        )
        assert float(waits.split()[-1]) >= 1, waits
        with psycopg.connect(replica.standby, autocommit=True) as conn:
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                )
            }
        assert "bizos-api-replica" in names and "bizos-api" not in names, names


def test_keys_are_the_primarys_while_the_replica_lags(replica: Replica) -> None:
    """A key made while the standby is behind works at once, and a revoked one stops
    at once: keys are never read from a replica."""
    publish_lead_scores(replica.publisher, "acme", lead_scores_table("acme", 5))
    old = create_key(replica.publisher, "acme")
    replica.replayed()
    with TestClient(create_app(replica.api)) as client:
        wait_for_feed(client)
        assert client.get(SCORES_URL, headers={"X-API-Key": old}).status_code == 200
        with replica.held_behind():
            new = create_key(replica.publisher, "acme")
            assert client.get(SCORES_URL, headers={"X-API-Key": new}).status_code == 200
            assert revoke_key(replica.publisher, old)
            assert client.get(SCORES_URL, headers={"X-API-Key": old}).status_code == 401


def test_a_review_reads_the_current_row_on_the_primary(replica: Replica) -> None:
    """With no copies, a read through SQL goes to the replica, except one asked of the
    primary (what a review decision checks its version against)."""
    api = replica.api.model_copy(update={"api_snapshots": False})
    publish_lead_scores(replica.publisher, "acme", lead_scores_table("acme", 5))
    replica.replayed()

    async def scenario() -> tuple[str, str, str]:
        reader = PostgresReader(api)
        await reader.open()
        try:

            async def version(primary: bool) -> str:
                got = await reader.get_row(
                    LEAD_SCORES,
                    lambda row: b"",
                    tenant_id="acme",
                    key={"lead_id": "lead-0001"},
                    unless_version=(),
                    primary=primary,
                )
                return got.version

            before = await version(False)
            with replica.held_behind():
                publish_lead_scores(replica.publisher, "acme", lead_scores_table("acme", 6))
                return before, await version(False), await version(True)
        finally:
            await reader.close()

    before, on_replica, on_primary = asyncio.run(scenario())
    assert on_replica == before != on_primary
