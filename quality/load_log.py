"""The two questions the checks ask of ``ops.load_log``, answered in SQL so their
cost does not grow with the log (a row per table per run, kept forever)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from core.settings import Settings
from opsdb.engine import ops_database_exists, transaction
from opsdb.tables import load_log


def batch_counts(
    settings: Settings, *, tenant_id: str, run_id: str
) -> dict[tuple[str, str], dict[str, int]]:
    """Per (source, table) the run loaded for the tenant: rows read and quarantined."""
    if not ops_database_exists(settings):
        return {}
    c = load_log.c
    query = sa.select(c.source, c.table_name, c.rows_in, c.rows_quarantined).where(
        c.tenant_id == tenant_id, c.run_id == run_id
    )
    with transaction(settings, write=False) as connection:
        rows = connection.execute(query).all()
    return {
        (r.source, r.table_name): {"rows_in": r.rows_in, "rows_quarantined": r.rows_quarantined}
        for r in rows
    }


@dataclass(frozen=True)
class LoadHistory:
    """Per (source, table), the newest successful load; and every source ever loaded."""

    last_success: dict[tuple[str, str], datetime]
    sources_loaded: set[str]


def load_history(settings: Settings, *, tenant_id: str) -> LoadHistory:
    if not ops_database_exists(settings):
        return LoadHistory({}, set())
    c = load_log.c
    newest = (
        sa.select(c.source, c.table_name, sa.func.max(c.finished_at).label("finished_at"))
        .where(c.tenant_id == tenant_id, c.status == "success")
        .group_by(c.source, c.table_name)
    )
    sources = sa.select(c.source).where(c.tenant_id == tenant_id).distinct()
    with transaction(settings, write=False) as connection:
        last = {(r.source, r.table_name): r.finished_at for r in connection.execute(newest)}
        loaded = {r.source for r in connection.execute(sources)}
    return LoadHistory(last, loaded)
