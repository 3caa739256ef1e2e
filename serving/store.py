"""The serving store: one interface, a Postgres and an embedded DuckDB implementation.

The implementation is picked once, here, from ``settings.target``; routes, publish and
scripts only see ``ServingStore``. Reads always take the tenant as an argument and
both stores filter by it (Postgres additionally through row-level security), so a
caller cannot forget the tenant and read everyone's rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from core.settings import Settings, Target

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# A served row: the mart columns plus published_at, as Python values.
LeadScoreRow = dict[str, Any]


class StoreUnavailable(RuntimeError):
    """The store cannot answer right now (server down, file unreadable)."""


class NothingPublished(StoreUnavailable):
    """The store is reachable but nothing has been published to it yet."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish did: the tenant's row count now live, and when it went live."""

    tenant_id: str
    rows: int
    published_at: datetime


@dataclass(frozen=True)
class ScoreCursor:
    """Keyset position after the last item of a page: (score desc, lead_id asc).

    Keyset rather than offset paging so a page costs the same at any depth and a
    republish between two pages neither repeats nor skips the rows already seen.
    """

    score: int
    lead_id: str

    def encode(self) -> str:
        raw = json.dumps([self.score, self.lead_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> ScoreCursor:
        """Parse a token from ``encode``; ValueError for anything a client made up."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            score, lead_id = json.loads(raw)
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise ValueError("invalid cursor") from exc
        if type(score) is not int or not isinstance(lead_id, str):
            raise ValueError("invalid cursor")
        return cls(score=score, lead_id=lead_id)


class ServingStore(Protocol):
    """What publish, the API and scripts need from a serving store."""

    @property
    def kind(self) -> Target: ...

    def publish_lead_scores(self, *, tenant_id: str, table: pa.Table) -> PublishResult:
        """Atomically replace ``tenant_id``'s rows; readers see all-old or all-new."""
        ...

    def list_lead_scores(
        self,
        *,
        tenant_id: str,
        grade: str | None = None,
        min_score: int | None = None,
        after: ScoreCursor | None = None,
        limit: int,
    ) -> list[LeadScoreRow]:
        """Up to ``limit`` rows ordered by score desc, lead_id asc, strictly after ``after``."""
        ...

    def get_lead_score(self, *, tenant_id: str, lead_id: str) -> LeadScoreRow | None: ...

    def last_published_at(self) -> datetime:
        """Time of the latest publish; NothingPublished / StoreUnavailable otherwise."""
        ...


def serving_store(settings: Settings, *, pool: ConnectionPool | None = None) -> ServingStore:
    """The store for ``settings.target``: the only place the choice is made.

    ``pool`` is the API's connection pool; without one the Postgres store opens a
    short-lived connection per call, which suits publish jobs and scripts.
    """
    if settings.target is Target.POSTGRES:
        from serving.postgres_store import PostgresStore

        return PostgresStore(settings, pool=pool)
    from serving.duckdb_store import DuckDBStore

    return DuckDBStore(settings)
