"""Recording a supplier review decision from the API, on either target.

Postgres: the API's own role calls ``ops.supplier_review_record`` (migration
ops_0003), which checks the key and its scope itself, so the tenant and reviewer
come from the key even there. Embedded: ``suppliers.reviews.record_decision`` on
the ops SQLite file, in a worker thread. Both apply the same rules in the same
order (idempotent replay, then staleness, then append) and audit every attempt.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool

from core.settings import Settings, Target
from serving.keys import KeyGrant
from serving.store import StoreUnavailable
from suppliers.reviews import (
    MatchVerdict,
    RecordedDecision,
    check_decision,
    record_decision,
    record_refusal,
    verdicts_json,
)


async def record_review(
    settings: Settings,
    grant: KeyGrant,
    *,
    supplier_id: str,
    decision: str,
    comment: str,
    risk_version: str,
    current_version: str | None,
    reasons_seen: list[dict[str, Any]],
    verdicts: list[MatchVerdict],
    idempotency_key: str,
    body_hash: str,
) -> RecordedDecision:
    check_decision(decision, verdicts)
    if settings.target is not Target.POSTGRES:
        return await run_in_threadpool(
            lambda: record_decision(
                settings,
                tenant_id=grant.tenant_id,
                reviewer=grant.key_prefix,
                supplier_id=supplier_id,
                decision=decision,
                comment=comment,
                risk_version=risk_version,
                current_version=current_version,
                reasons_seen=reasons_seen,
                match_verdicts=verdicts,
                idempotency_key=idempotency_key,
                body_hash=body_hash,
            )
        )
    url = settings.api_postgres_url
    if url is None:
        raise StoreUnavailable("BIZOS_API_DATABASE_URL is not set: reviews cannot be recorded")
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=10) as conn:
            cursor = await conn.execute(
                "SELECT outcome, decision_id, tenant_id, reviewer, decided_at FROM "
                "ops.supplier_review_record(%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)",
                [
                    grant.key_hash,
                    supplier_id,
                    decision,
                    comment,
                    risk_version,
                    current_version,
                    json.dumps(reasons_seen),
                    json.dumps(verdicts_json(verdicts)),
                    idempotency_key,
                    body_hash,
                ],
            )
            row = await cursor.fetchone()
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"the review store is unreachable: {type(exc).__name__}") from exc
    assert row is not None
    return RecordedDecision(*row)


async def audit_refusal(
    settings: Settings, grant: KeyGrant, *, supplier_id: str, idempotency_key: str, detail: str
) -> None:
    """Audit a decision the API refused before recording (e.g. approval over a match)."""
    if settings.target is not Target.POSTGRES:
        await run_in_threadpool(
            lambda: record_refusal(
                settings,
                tenant_id=grant.tenant_id,
                reviewer=grant.key_prefix,
                supplier_id=supplier_id,
                idempotency_key=idempotency_key,
                outcome="refused",
                detail=detail,
            )
        )
        return
    url = settings.api_postgres_url
    if url is None:
        return
    async with await psycopg.AsyncConnection.connect(url, connect_timeout=10) as conn:
        await conn.execute(
            "SELECT ops.supplier_review_audit_add(%s, %s, %s, 'refused', %s)",
            [grant.key_hash, supplier_id, idempotency_key, detail],
        )
