"""Reviewers' decisions on suppliers: append-only, idempotent, audited.

A decision (approve, reject, request_info, with a comment) is posted over the API
by the holder of a key with the ``reviews:write`` scope; the reviewer recorded is
the key's prefix, never a name the caller typed. It records the risk version and
the reasons the reviewer saw, and the reviewer's verdicts on screening matches
(``not_same``: remembered, the pair is never raised again; ``confirmed``: blocks
approval). Rows are never updated or deleted (triggers refuse it); every attempt,
refused ones too, goes to the audit table.

Tables: ``ops.supplier_review_decisions`` and ``ops.supplier_review_audit``
(opsdb/tables.py, migration ops_0003). On Postgres the API's own role records
through ``ops.supplier_review_record`` (same rules, in SQL; see the migration);
this module is the embedded path and the pipeline's reader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from core.contracts.suppliers import DECISIONS, MATCH_VERDICTS
from core.settings import Settings
from opsdb.engine import ops_database_exists, transaction
from opsdb.tables import supplier_review_audit, supplier_review_decisions


class ReviewRequestError(ValueError):
    """A decision that cannot be recorded as asked (bad decision, bad verdict)."""


@dataclass(frozen=True)
class MatchVerdict:
    list_name: str
    entry_id: str
    verdict: str


@dataclass(frozen=True)
class RecordedDecision:
    """What became of a decision request: ``recorded`` (new), ``replayed`` (an earlier
    request with the same idempotency key recorded it), ``stale`` (the reviewer saw
    an older risk version) or ``conflict`` (the idempotency key was used for another
    body). Only the first two carry a decision."""

    outcome: str
    decision_id: int | None
    tenant_id: str
    reviewer: str
    decided_at: datetime | None


def request_hash(body: dict[str, Any]) -> str:
    """What makes two requests "the same" for an idempotency key: their canonical JSON."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_decision(decision: str, verdicts: list[MatchVerdict]) -> None:
    if decision not in DECISIONS:
        raise ReviewRequestError(f"decision must be one of {list(DECISIONS)}, got {decision!r}")
    for v in verdicts:
        if v.verdict not in MATCH_VERDICTS:
            raise ReviewRequestError(
                f"match verdict must be one of {list(MATCH_VERDICTS)}, got {v.verdict!r}"
            )
    if decision == "approve" and any(v.verdict == "confirmed" for v in verdicts):
        raise ReviewRequestError("a confirmed screening match blocks approval")


def verdicts_json(verdicts: list[MatchVerdict]) -> list[dict[str, str]]:
    return [
        {"entry_id": v.entry_id, "list_name": v.list_name, "verdict": v.verdict} for v in verdicts
    ]


def record_decision(
    settings: Settings,
    *,
    tenant_id: str,
    reviewer: str,
    supplier_id: str,
    decision: str,
    comment: str,
    risk_version: str,
    current_version: str | None,
    reasons_seen: list[dict[str, Any]],
    match_verdicts: list[MatchVerdict],
    idempotency_key: str,
    body_hash: str,
) -> RecordedDecision:
    """Append a decision unless the key replays an earlier one or the version is stale.

    The same rules as ``ops.supplier_review_record`` (migration ops_0003), which the
    API's role calls on Postgres; every outcome is audited.
    """
    check_decision(decision, match_verdicts)
    at = datetime.now(UTC)
    d = supplier_review_decisions.c
    with transaction(settings, write=True) as conn:
        earlier = conn.execute(
            sa.select(d.decision_id, d.reviewer, d.decided_at, d.request_hash).where(
                d.tenant_id == tenant_id, d.idempotency_key == idempotency_key
            )
        ).first()
        detail = None
        if earlier is not None:
            outcome = "replayed" if earlier.request_hash == body_hash else "conflict"
            result = RecordedDecision(
                outcome, earlier.decision_id, tenant_id, earlier.reviewer, earlier.decided_at
            )
            if outcome == "conflict":
                result = RecordedDecision(outcome, None, tenant_id, reviewer, None)
        elif risk_version != current_version:
            outcome, detail = "stale", f"saw {risk_version}, current {current_version or '-'}"
            result = RecordedDecision(outcome, None, tenant_id, reviewer, None)
        else:
            outcome = "recorded"
            decision_id: int = conn.execute(
                supplier_review_decisions.insert()
                .values(
                    tenant_id=tenant_id,
                    supplier_id=supplier_id,
                    decision=decision,
                    comment=comment,
                    reviewer=reviewer,
                    risk_version=risk_version,
                    reasons_seen=reasons_seen,
                    match_verdicts=verdicts_json(match_verdicts),
                    idempotency_key=idempotency_key,
                    request_hash=body_hash,
                    decided_at=at,
                )
                .returning(d.decision_id)
            ).scalar_one()
            result = RecordedDecision(outcome, decision_id, tenant_id, reviewer, at)
        _audit(
            conn, at, tenant_id, supplier_id, reviewer, idempotency_key, outcome,
            decision_id=result.decision_id, detail=detail,
        )  # fmt: skip
    return result


def record_refusal(
    settings: Settings,
    *,
    tenant_id: str,
    reviewer: str,
    supplier_id: str,
    idempotency_key: str,
    outcome: str,
    detail: str,
) -> None:
    """Audit an attempt that recorded nothing (a stale risk version, a refused request)."""
    with transaction(settings, write=True) as conn:
        _audit(
            conn, datetime.now(UTC), tenant_id, supplier_id, reviewer, idempotency_key, outcome,
            detail=detail,
        )  # fmt: skip


def _audit(
    conn: sa.Connection,
    at: datetime,
    tenant_id: str,
    supplier_id: str,
    reviewer: str,
    idempotency_key: str,
    outcome: str,
    *,
    decision_id: int | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        supplier_review_audit.insert().values(
            at=at,
            tenant_id=tenant_id,
            supplier_id=supplier_id,
            reviewer=reviewer,
            idempotency_key=idempotency_key,
            outcome=outcome,
            decision_id=decision_id,
            detail=detail,
        )
    )


def decisions_for(settings: Settings, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's decisions, oldest first, as the lake table holds them."""
    if not ops_database_exists(settings):
        return []
    d = supplier_review_decisions.c
    with transaction(settings, write=False) as conn:
        rows = conn.execute(
            sa.select(
                d.decision_id,
                d.supplier_id,
                d.decision,
                d.comment,
                d.reviewer,
                d.risk_version,
                d.match_verdicts,
                d.decided_at,
            )
            .where(d.tenant_id == tenant_id)
            .order_by(d.decision_id)
        ).all()
    return [
        {**row._asdict(), "match_verdicts": json.dumps(row.match_verdicts, sort_keys=True)}
        for row in rows
    ]


def not_same_pairs(decisions: list[dict[str, Any]]) -> frozenset[tuple[str, str, str]]:
    """(supplier, list, entry) pairs a reviewer ruled out: never raised again."""
    pairs = set()
    for decision in decisions:
        for verdict in json.loads(decision["match_verdicts"] or "[]"):
            if verdict.get("verdict") == "not_same":
                pairs.add((decision["supplier_id"], verdict["list_name"], verdict["entry_id"]))
    return frozenset(pairs)


def latest_decision_ids(settings: Settings) -> dict[str, int]:
    """The newest decision id per tenant: what the review sensor compares."""
    if not ops_database_exists(settings):
        return {}
    d = supplier_review_decisions.c
    with transaction(settings, write=False) as conn:
        rows = conn.execute(
            sa.select(d.tenant_id, sa.func.max(d.decision_id)).group_by(d.tenant_id)
        ).all()
    return {str(row[0]): int(row[1]) for row in rows}


def audit_trail(settings: Settings, tenant_id: str) -> list[dict[str, Any]]:
    """Every attempt of the tenant's reviewers, oldest first."""
    a = supplier_review_audit.c
    with transaction(settings, write=False) as conn:
        rows = conn.execute(
            sa.select(supplier_review_audit).where(a.tenant_id == tenant_id).order_by(a.audit_id)
        ).all()
    return [row._asdict() for row in rows]
