"""What the credential audit log records: who touched which tenant's secret, when, how.

Rows live in the credentials store itself (``ops.credential_audit`` on Postgres, the
``credential_audit`` table of ``credentials.sqlite`` embedded) and are written in the
same transaction as the operation they record: a secret is never handed out without
its audit row committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuditAction(StrEnum):
    READ = "read"
    SET = "set"
    DELETE = "delete"
    ROTATE = "rotate"


class AuditOutcome(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    # The store has the credential but it could not be decrypted (wrong master key,
    # or a ciphertext moved or altered): worth seeing in an audit.
    REFUSED = "refused"


@dataclass(frozen=True)
class AuditEntry:
    """One audited operation; ``source`` is None for a master-key rotation."""

    at: datetime
    actor: str
    tenant_id: str
    source: str | None
    action: AuditAction
    outcome: AuditOutcome
