"""Postgres serving store: ``serving.lead_scores`` behind row-level security.

Publish builds ``serving.lead_scores__next`` beside the live table and swaps the two
by renaming inside one transaction, so a reader's query sees either the whole old
table or the whole new one. A reader blocked on the live table during the swap
resolves the name again once the lock is granted, and so reads the new table.

Readers never query as the owner: each request runs in a transaction that does
``SET LOCAL ROLE bizos_reader`` and sets ``bizos.tenant_id``, so the RLS policy
keeps tenants apart even if a query forgot its ``WHERE tenant_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

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

SCHEMA = "serving"
TABLE = "lead_scores"
READER_ROLE = "bizos_reader"
TENANT_SETTING = "bizos.tenant_id"
# One key for every publisher of the serving schema: publishes of different tenants
# still read each other's rows from live, so they must not overlap.
PUBLISH_LOCK = "bizos.serving.publish"

_COLUMN_DDL = """
    tenant_id    text NOT NULL,
    lead_id      text COLLATE "C" NOT NULL,
    email        text NOT NULL,
    first_name   text,
    last_name    text,
    company      text,
    title        text,
    industry     text,
    company_size text,
    country      text,
    source       text,
    status       text,
    created_at   timestamptz NOT NULL,
    score        integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    grade        text NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D')),
    reasons      text,
    score_model  text NOT NULL,
    published_at timestamptz NOT NULL
"""
# lead_id is COLLATE "C" so keyset order is byte order, the same as DuckDB's.

_ENSURE_READER_ROLE = """
DO $$
DECLARE
    can_set boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bizos_reader') THEN
        BEGIN
            CREATE ROLE bizos_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- roles are cluster-wide: another database created it first
        END;
    END IF;
    -- SET ROLE needs membership (superusers always have it); PG16 split out SET.
    IF current_setting('server_version_num')::int >= 160000 THEN
        can_set := pg_has_role(current_user, 'bizos_reader', 'SET');
    ELSE
        can_set := pg_has_role(current_user, 'bizos_reader', 'MEMBER');
    END IF;
    IF NOT can_set THEN
        EXECUTE format('GRANT bizos_reader TO %I', current_user);
    END IF;
END
$$
"""


class PostgresStore:
    """Serving store on Postgres; see the module docstring for the publish protocol."""

    kind = Target.POSTGRES

    def __init__(self, settings: Settings, *, pool: ConnectionPool | None = None) -> None:
        self._settings = settings
        self._pool = pool

    # -- connections -------------------------------------------------------------

    def _connect(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        if self._pool is not None:
            return self._pool.connection()
        return psycopg.connect(self._settings.postgres_url, connect_timeout=10)

    @contextmanager
    def _reader(self, tenant_id: str) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A cursor inside a transaction that can only see ``tenant_id``'s rows."""
        try:
            with self._connect() as conn, conn.transaction():
                try:
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(READER_ROLE)))
                except psycopg.errors.InvalidParameterValue as exc:
                    # The first publish creates the role; none has run on this cluster.
                    raise NothingPublished("nothing has been published to Postgres yet") from exc
                conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, tenant_id])
                with conn.cursor(row_factory=dict_row) as cur:
                    yield cur
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
            raise NothingPublished("nothing has been published to Postgres yet") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc

    # -- publish -----------------------------------------------------------------

    def publish_lead_scores(self, *, tenant_id: str, table: pa.Table) -> PublishResult:
        rows = conform_lead_scores(tenant_id, table)
        published_at = datetime.now(UTC)
        # Publish uses its own connection, never the API pool: it holds a long
        # transaction and must not starve readers of connections.
        with psycopg.connect(self._settings.postgres_url, connect_timeout=10) as conn:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [PUBLISH_LOCK]
                )
                ensure_schema(conn)
                self._build_next(conn, tenant_id, rows, published_at)
                self._swap_in_next(conn)
                conn.execute(
                    "INSERT INTO serving.publish_log (table_name, tenant_id, rows, published_at)"
                    " VALUES (%s, %s, %s, %s)",
                    [TABLE, tenant_id, rows.num_rows, published_at],
                )
        log.info("published %d lead scores for tenant %s", rows.num_rows, tenant_id)
        return PublishResult(tenant_id=tenant_id, rows=rows.num_rows, published_at=published_at)

    def _build_next(
        self, conn: psycopg.Connection[Any], tenant_id: str, rows: pa.Table, published_at: datetime
    ) -> None:
        live = sql.Identifier(SCHEMA, TABLE)
        nxt = sql.Identifier(SCHEMA, f"{TABLE}__next")
        columns = sql.SQL(", ").join(map(sql.Identifier, SERVED_COLUMNS))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(nxt))
        _create_lead_scores_table(conn, f"{TABLE}__next")
        conn.execute(
            sql.SQL(
                "INSERT INTO {nxt} ({cols}) SELECT {cols} FROM {live} WHERE tenant_id <> %s"
            ).format(nxt=nxt, cols=columns, live=live),
            [tenant_id],
        )
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(nxt, columns)) as copy,
        ):
            for batch in rows.to_batches(max_chunksize=10_000):
                for record in batch.to_pylist():
                    copy.write_row([*(record[c] for c in LEAD_SCORE_COLUMNS), published_at])
        _secure_lead_scores_table(conn, f"{TABLE}__next")
        conn.execute(sql.SQL("ANALYZE {}").format(nxt))

    def _swap_in_next(self, conn: psycopg.Connection[Any]) -> None:
        """Rename next over live; runs inside the publish transaction, so it is one step."""
        old, nxt = f"{TABLE}__old", f"{TABLE}__next"
        ident = sql.Identifier
        rename = sql.SQL("ALTER TABLE {} RENAME TO {}")
        conn.execute(rename.format(ident(SCHEMA, TABLE), ident(old)))
        conn.execute(rename.format(ident(SCHEMA, nxt), ident(TABLE)))
        conn.execute(sql.SQL("DROP TABLE {}").format(ident(SCHEMA, old)))
        # Index names are schema-wide: give the live ones back their stable names so
        # the next publish can create lead_scores__next_* again.
        live = ident(SCHEMA, TABLE)
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                live, ident(f"{nxt}_pkey"), ident(f"{TABLE}_pkey")
            )
        )
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                ident(SCHEMA, f"{nxt}_rank_idx"), ident(f"{TABLE}_rank_idx")
            )
        )

    # -- reads -------------------------------------------------------------------

    def list_lead_scores(
        self,
        *,
        tenant_id: str,
        grade: str | None = None,
        min_score: int | None = None,
        after: ScoreCursor | None = None,
        limit: int,
    ) -> list[LeadScoreRow]:
        # tenant_id in the WHERE as well as in RLS: defence in depth, and it lets
        # the planner use the (tenant_id, score, lead_id) index.
        where = [sql.SQL("tenant_id = %(tenant_id)s")]
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit}
        if grade is not None:
            where.append(sql.SQL("grade = %(grade)s"))
            params["grade"] = grade
        if min_score is not None:
            where.append(sql.SQL("score >= %(min_score)s"))
            params["min_score"] = min_score
        if after is not None:
            where.append(
                sql.SQL("(score < %(a_score)s OR (score = %(a_score)s AND lead_id > %(a_lead)s))")
            )
            params.update(a_score=after.score, a_lead=after.lead_id)
        query = sql.SQL(
            "SELECT {cols} FROM {table} WHERE {where} ORDER BY score DESC, lead_id LIMIT %(limit)s"
        ).format(
            cols=sql.SQL(", ").join(map(sql.Identifier, SERVED_COLUMNS)),
            table=sql.Identifier(SCHEMA, TABLE),
            where=sql.SQL(" AND ").join(where),
        )
        with self._reader(tenant_id) as cur:
            return cur.execute(query, params).fetchall()

    def get_lead_score(self, *, tenant_id: str, lead_id: str) -> LeadScoreRow | None:
        query = sql.SQL("SELECT {cols} FROM {table} WHERE tenant_id = %s AND lead_id = %s").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, SERVED_COLUMNS)),
            table=sql.Identifier(SCHEMA, TABLE),
        )
        with self._reader(tenant_id) as cur:
            return cur.execute(query, [tenant_id, lead_id]).fetchone()

    def last_published_at(self) -> datetime:
        # Readiness is not a tenant read: it runs as the connecting role, and the
        # publish log (which names every tenant) is never granted to bizos_reader.
        try:
            with self._connect() as conn:
                found = conn.execute("SELECT to_regclass('serving.publish_log')").fetchone()
                if found is None or found[0] is None:
                    raise NothingPublished("nothing has been published to Postgres yet")
                last = conn.execute(
                    "SELECT max(published_at) FROM serving.publish_log WHERE table_name = %s",
                    [TABLE],
                ).fetchone()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable("Postgres is unreachable") from exc
        if last is None or last[0] is None:
            raise NothingPublished("nothing has been published to Postgres yet")
        return last[0]


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the serving schema, reader role, live table and publish log if missing.

    Idempotent, so the first publish on an empty database sets everything up and
    later ones cost a few catalog lookups.
    """
    conn.execute(_ENSURE_READER_ROLE)
    conn.execute("CREATE SCHEMA IF NOT EXISTS serving")
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA serving TO {}").format(sql.Identifier(READER_ROLE)))
    exists = conn.execute("SELECT to_regclass('serving.lead_scores')").fetchone()
    if exists is None or exists[0] is None:
        _create_lead_scores_table(conn, TABLE)
        _secure_lead_scores_table(conn, TABLE)
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS serving.publish_log (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            table_name   text NOT NULL,
            tenant_id    text NOT NULL,
            rows         bigint NOT NULL,
            published_at timestamptz NOT NULL
        )
        """
    )


def _create_lead_scores_table(conn: psycopg.Connection[Any], name: str) -> None:
    """Explicit DDL (not LIKE) so constraint and index names are ours to rename."""
    conn.execute(
        sql.SQL(
            "CREATE TABLE {table} ({columns}, CONSTRAINT {pkey} PRIMARY KEY (tenant_id, lead_id))"
        ).format(
            table=sql.Identifier(SCHEMA, name),
            columns=sql.SQL(_COLUMN_DDL),
            pkey=sql.Identifier(f"{name}_pkey"),
        )
    )
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} (tenant_id, score DESC, lead_id)").format(
            sql.Identifier(f"{name}_rank_idx"), sql.Identifier(SCHEMA, name)
        )
    )


def _secure_lead_scores_table(conn: psycopg.Connection[Any], name: str) -> None:
    """RLS, policies and grants; they follow the table through the rename."""
    table = sql.Identifier(SCHEMA, name)
    reader = sql.Identifier(READER_ROLE)
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
    # FORCE so the owner is bound too: no code path reads all tenants by accident.
    conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
    conn.execute(
        sql.SQL(
            "CREATE POLICY tenant_isolation ON {} FOR SELECT TO {} "
            "USING (tenant_id = current_setting({}, true))"
        ).format(table, reader, sql.Literal(TENANT_SETTING))
    )
    # With FORCE, the publisher (owner) needs its own policy to copy the other
    # tenants' rows into the next table. It names the publishing role itself, which
    # bizos_reader is not a member of, so it never applies to API reads.
    conn.execute(
        sql.SQL(
            "CREATE POLICY publisher_all ON {} FOR ALL TO CURRENT_USER"
            " USING (true) WITH CHECK (true)"
        ).format(table)
    )
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, reader))


def open_pool(settings: Settings, *, max_size: int = 10) -> ConnectionPool:
    """The API's connection pool, opened without waiting for the server.

    ``wait=False`` lets the app start while Postgres is down: /health answers and
    /ready reports 503 until connections succeed. ``check`` drops connections a
    server restart killed before a request gets one.
    """
    pool: ConnectionPool = ConnectionPool(
        settings.postgres_url,
        min_size=1,
        max_size=max_size,
        timeout=5,
        name="bizos-serving",
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={"connect_timeout": 5, "application_name": "bizos-serving"},
    )
    pool.open(wait=False)
    return pool
