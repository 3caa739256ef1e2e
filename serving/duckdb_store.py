"""Embedded serving store: one DuckDB file, replaced whole on every publish.

DuckDB allows one writer process per file and no readers beside it, so publish never
writes the live file. It writes a complete new file beside it (the other tenants'
rows copied from the live file, plus the new rows), checkpoints and closes it, and
``os.replace``s it over ``serving.duckdb``. A rename is atomic: a reader opens either
the old inode or the new one, and keeps its inode for as long as it has it open.

Readers attach the file read-only into a private in-memory database per call rather
than ``duckdb.connect(path)``: DuckDB caches database instances by path within a
process, and a cached instance would keep serving the replaced file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from core.contracts.lead_scores import LEAD_SCORE_COLUMNS, SERVED_COLUMNS, conform_lead_scores
from core.settings import Settings, Target
from serving.store import (
    LeadScoreRow,
    NothingPublished,
    PublishResult,
    ScoreCursor,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

FILE_NAME = "serving.duckdb"
LOCK_NAME = ".publish.lock"
TABLE = "lead_scores"

# No primary key: uniqueness is checked at publish before any row is written, and
# an index would be rebuilt on every publish while readers only scan.
_CREATE_LEAD_SCORES = """
CREATE TABLE lead_scores (
    tenant_id    VARCHAR NOT NULL,
    lead_id      VARCHAR NOT NULL,
    email        VARCHAR NOT NULL,
    first_name   VARCHAR,
    last_name    VARCHAR,
    company      VARCHAR,
    title        VARCHAR,
    industry     VARCHAR,
    company_size VARCHAR,
    country      VARCHAR,
    source       VARCHAR,
    status       VARCHAR,
    created_at   TIMESTAMPTZ NOT NULL,
    score        INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
    grade        VARCHAR NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D')),
    reasons      VARCHAR,
    score_model  VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL
)
"""
_CREATE_PUBLISH_LOG = """
CREATE TABLE publish_log (
    table_name   VARCHAR NOT NULL,
    tenant_id    VARCHAR NOT NULL,
    rows         BIGINT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL
)
"""
_COLUMNS = ", ".join(SERVED_COLUMNS)


def _sql_string(value: str) -> str:
    """A SQL string literal; ATTACH takes no bound parameters for its path."""
    return "'" + value.replace("'", "''") + "'"


class DuckDBStore:
    """Serving store in ``settings.serving_dir / "serving.duckdb"``."""

    kind = Target.DUCKDB

    def __init__(self, settings: Settings) -> None:
        self._dir = settings.serving_dir
        self.path = self._dir / FILE_NAME

    # -- publish -----------------------------------------------------------------

    def publish_lead_scores(self, *, tenant_id: str, table: pa.Table) -> PublishResult:
        rows = conform_lead_scores(tenant_id, table)
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._publish_lock():
            published_at = datetime.now(UTC)
            next_path = self._dir / f"{FILE_NAME}.next-{uuid.uuid4().hex}"
            try:
                self._write_next(next_path, tenant_id, rows, published_at)
                os.replace(next_path, self.path)
            except BaseException:
                for leftover in (next_path, next_path.with_name(next_path.name + ".wal")):
                    with suppress(FileNotFoundError):
                        leftover.unlink()
                raise
            _fsync_dir(self._dir)
        log.info("published %d lead scores for tenant %s", rows.num_rows, tenant_id)
        return PublishResult(tenant_id=tenant_id, rows=rows.num_rows, published_at=published_at)

    @contextmanager
    def _publish_lock(self) -> Iterator[None]:
        """Serialize publishers across threads and processes.

        Without it two publishers of different tenants would each copy the live file
        as they found it, and the later rename would drop the other's tenant.
        flock locks belong to the open file description, so threads that open the
        lock file separately exclude each other too.
        """
        with open(self._dir / LOCK_NAME, "a+b") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _write_next(
        self, next_path: Path, tenant_id: str, rows: pa.Table, published_at: datetime
    ) -> None:
        con = duckdb.connect(str(next_path))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(_CREATE_LEAD_SCORES)
            con.execute(_CREATE_PUBLISH_LOG)
            con.register("incoming", rows)
            sources = [
                f"SELECT {', '.join(LEAD_SCORE_COLUMNS)}, $published_at AS published_at "
                "FROM incoming"
            ]
            if self.path.exists():
                con.execute(f"ATTACH {_sql_string(str(self.path))} AS live (READ_ONLY)")
                sources.append(
                    f"SELECT {_COLUMNS} FROM live.lead_scores WHERE tenant_id <> $tenant"
                )
                con.execute("INSERT INTO publish_log SELECT * FROM live.publish_log")
            # Sorted so each row group covers a narrow (tenant, score) range and the
            # min/max zone maps let tenant-filtered reads skip most of the file.
            con.execute(
                f"INSERT INTO lead_scores ({_COLUMNS}) "
                f"SELECT * FROM ({' UNION ALL '.join(sources)}) "
                "ORDER BY tenant_id, score DESC, lead_id",
                {"published_at": published_at, "tenant": tenant_id}
                if len(sources) > 1
                else {"published_at": published_at},
            )
            con.execute(
                "INSERT INTO publish_log VALUES (?, ?, ?, ?)",
                [TABLE, tenant_id, rows.num_rows, published_at],
            )
            if len(sources) > 1:
                con.execute("DETACH live")
            con.unregister("incoming")
            # Everything into the file itself: a .wal beside it would not move with
            # the rename, and the readers open the file read-only.
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with open(next_path, "rb") as written:
            os.fsync(written.fileno())

    # -- reads -------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.exists():
            raise NothingPublished("nothing has been published to the embedded store yet")
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            try:
                con.execute(f"ATTACH {_sql_string(str(self.path))} AS serving (READ_ONLY)")
            except duckdb.IOException as exc:
                raise StoreUnavailable(f"cannot open {self.path.name}: {exc}") from exc
            con.execute("USE serving")
            yield con
        finally:
            con.close()

    def list_lead_scores(
        self,
        *,
        tenant_id: str,
        grade: str | None = None,
        min_score: int | None = None,
        after: ScoreCursor | None = None,
        limit: int,
    ) -> list[LeadScoreRow]:
        where = ["tenant_id = $tenant_id"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit}
        if grade is not None:
            where.append("grade = $grade")
            params["grade"] = grade
        if min_score is not None:
            where.append("score >= $min_score")
            params["min_score"] = min_score
        if after is not None:
            where.append("(score < $a_score OR (score = $a_score AND lead_id > $a_lead))")
            params.update(a_score=after.score, a_lead=after.lead_id)
        query = (
            f"SELECT {_COLUMNS} FROM lead_scores WHERE {' AND '.join(where)} "
            "ORDER BY score DESC, lead_id LIMIT $limit"
        )
        with self._reader() as con:
            return _dicts(con.execute(query, params))

    def get_lead_score(self, *, tenant_id: str, lead_id: str) -> LeadScoreRow | None:
        query = f"SELECT {_COLUMNS} FROM lead_scores WHERE tenant_id = ? AND lead_id = ?"
        with self._reader() as con:
            found = _dicts(con.execute(query, [tenant_id, lead_id]))
        return found[0] if found else None

    def last_published_at(self) -> datetime:
        with self._reader() as con:
            row = con.execute(
                "SELECT max(published_at) FROM publish_log WHERE table_name = ?", [TABLE]
            ).fetchone()
        if row is None or row[0] is None:
            raise NothingPublished("nothing has been published to the embedded store yet")
        return row[0]


def _dicts(result: duckdb.DuckDBPyConnection) -> list[LeadScoreRow]:
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, values, strict=True)) for values in result.fetchall()]


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable, not just the file contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
