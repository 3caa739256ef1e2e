"""Where encrypted credentials live: one store over the ops database, on both targets.

The store only ever sees ciphertexts, wrapped data keys, key ids and audit rows;
encryption happens in ``credentials.vault`` before anything reaches it. The tables
(``tenant_data_keys``, ``tenant_credentials``, ``credential_audit``) are declared in
``opsdb.tables`` and created by the ``ops`` migrations: schema ``ops`` on Postgres,
``BIZOS_HOME/state/ops.sqlite`` (mode 0600) embedded. The same code runs on both.

Every operation is one transaction (``CredentialStore.transaction``) so a secret's
audit row commits with it, and a master-key rotation swaps all wrapped data keys
at once: a reader sees all of them under the old key or all under the new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from core.settings import Settings
from credentials.audit import AuditAction, AuditEntry, AuditOutcome
from credentials.crypto import CredentialError
from opsdb.engine import OpsDatabaseUnavailable, insert, ops_database_exists, transaction
from opsdb.tables import credential_audit, tenant_credentials, tenant_data_keys


class CredentialStoreUnavailable(CredentialError):
    """The store cannot be reached (Postgres down, file unreadable)."""


@dataclass(frozen=True)
class StoredDataKey:
    """A tenant's data key as stored: encrypted under the master key with ``key_id``."""

    tenant_id: str
    key_id: str
    wrapped: bytes

    def __repr__(self) -> str:
        return f"StoredDataKey(tenant_id={self.tenant_id!r}, key_id={self.key_id!r})"


@dataclass(frozen=True)
class CredentialInfo:
    """What ``list`` shows about a stored credential: never its value."""

    tenant_id: str
    source: str
    created_at: datetime
    updated_at: datetime
    key_id: str


class CredentialTransaction(Protocol):
    """The operations of one store transaction; the vault composes them."""

    def lock_data_keys(self, *, for_rotation: bool) -> None:
        """Before creating a data key (shared) or re-wrapping all of them (exclusive)."""
        ...

    def data_key(self, tenant_id: str) -> StoredDataKey | None: ...

    def data_key_ids(self) -> set[str]:
        """Key ids of the master keys the stored data keys are wrapped under."""
        ...

    def all_data_keys(self) -> list[StoredDataKey]: ...

    def insert_data_key(self, key: StoredDataKey, *, at: datetime) -> bool:
        """False when the tenant already has one (another writer was first)."""
        ...

    def rewrap_data_key(self, key: StoredDataKey, *, at: datetime) -> None: ...

    def ciphertext(self, tenant_id: str, source: str) -> bytes | None: ...

    def put_ciphertext(
        self, tenant_id: str, source: str, ciphertext: bytes, *, at: datetime
    ) -> None: ...

    def delete_ciphertext(self, tenant_id: str, source: str) -> bool: ...

    def audit(self, entry: AuditEntry) -> None: ...


class CredentialStore(Protocol):
    def transaction(self) -> AbstractContextManager[CredentialTransaction]: ...

    def list_credentials(self, *, tenant_id: str | None) -> list[CredentialInfo]: ...

    def read_audit(self, *, tenant_id: str | None, limit: int | None) -> list[AuditEntry]: ...


def credential_store(settings: Settings) -> CredentialStore:
    """The store for ``settings``: the same code on SQLite and Postgres."""
    return OpsCredentials(settings)


class OpsCredentials:
    """Credentials in the ops database (schema ``ops``, or ``state/ops.sqlite``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        try:
            with transaction(self._settings, write=write) as connection:
                yield connection
        except OpsDatabaseUnavailable as exc:
            raise CredentialStoreUnavailable(f"the credentials store: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[CredentialTransaction]:
        # Write mode: every operation writes at least an audit row, and on SQLite
        # taking the write lock late could fail with SQLITE_BUSY.
        with self._transaction(write=True) as connection:
            yield _OpsTransaction(connection)

    def list_credentials(self, *, tenant_id: str | None) -> list[CredentialInfo]:
        if not ops_database_exists(self._settings):
            return []  # nothing was ever stored; do not litter an empty file
        c, k = tenant_credentials.c, tenant_data_keys.c
        query = (
            sa.select(c.tenant_id, c.source, c.created_at, c.updated_at, k.key_id)
            .join_from(tenant_credentials, tenant_data_keys, c.tenant_id == k.tenant_id)
            .order_by(c.tenant_id, c.source)
        )
        if tenant_id is not None:
            query = query.where(c.tenant_id == tenant_id)
        with self._transaction(write=False) as connection:
            rows = connection.execute(query).tuples().all()
        return [CredentialInfo(*row) for row in rows]

    def read_audit(self, *, tenant_id: str | None, limit: int | None) -> list[AuditEntry]:
        if not ops_database_exists(self._settings):
            return []
        a = credential_audit.c
        query = sa.select(a.at, a.actor, a.tenant_id, a.source, a.action, a.outcome).order_by(
            a.audit_id.desc()
        )
        if tenant_id is not None:
            query = query.where(a.tenant_id == tenant_id)
        if limit is not None:
            query = query.limit(limit)
        with self._transaction(write=False) as connection:
            rows = connection.execute(query).tuples().all()
        return [
            AuditEntry(
                at=at,
                actor=actor,
                tenant_id=tenant,
                source=source,
                action=AuditAction(action),
                outcome=AuditOutcome(outcome),
            )
            for at, actor, tenant, source, action, outcome in rows
        ]


class _OpsTransaction:
    def __init__(self, connection: sa.Connection) -> None:
        self._conn = connection

    def lock_data_keys(self, *, for_rotation: bool) -> None:
        if self._conn.dialect.name != "postgresql":
            return  # SQLite: BEGIN IMMEDIATE already made this the only writer
        # ROW EXCLUSIVE (writers creating a data key) does not block other writers;
        # SHARE ROW EXCLUSIVE (a rotation) waits for them and holds them off until it
        # commits, so no data key is created under the old master key mid-rotation.
        # Neither blocks plain SELECTs: readers carry on with their snapshot.
        mode = "SHARE ROW EXCLUSIVE" if for_rotation else "ROW EXCLUSIVE"
        self._conn.exec_driver_sql(f"LOCK TABLE ops.tenant_data_keys IN {mode} MODE")

    def data_key(self, tenant_id: str) -> StoredDataKey | None:
        k = tenant_data_keys.c
        row = self._conn.execute(
            sa.select(k.tenant_id, k.key_id, k.wrapped_key).where(k.tenant_id == tenant_id)
        ).first()
        return StoredDataKey(row[0], row[1], bytes(row[2])) if row else None

    def data_key_ids(self) -> set[str]:
        k = tenant_data_keys.c
        return set(self._conn.execute(sa.select(k.key_id).distinct()).scalars())

    def all_data_keys(self) -> list[StoredDataKey]:
        k = tenant_data_keys.c
        rows = self._conn.execute(
            sa.select(k.tenant_id, k.key_id, k.wrapped_key).order_by(k.tenant_id)
        ).all()
        return [StoredDataKey(row[0], row[1], bytes(row[2])) for row in rows]

    def insert_data_key(self, key: StoredDataKey, *, at: datetime) -> bool:
        statement = (
            insert(self._conn, tenant_data_keys)
            .values(
                tenant_id=key.tenant_id, key_id=key.key_id, wrapped_key=key.wrapped, created_at=at
            )
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        return self._conn.execute(statement).rowcount == 1

    def rewrap_data_key(self, key: StoredDataKey, *, at: datetime) -> None:
        k = tenant_data_keys.c
        self._conn.execute(
            tenant_data_keys.update()
            .where(k.tenant_id == key.tenant_id)
            .values(key_id=key.key_id, wrapped_key=key.wrapped, rewrapped_at=at)
        )

    def ciphertext(self, tenant_id: str, source: str) -> bytes | None:
        c = tenant_credentials.c
        value = self._conn.execute(
            sa.select(c.ciphertext).where(c.tenant_id == tenant_id, c.source == source)
        ).scalar()
        return bytes(value) if value is not None else None

    def put_ciphertext(
        self, tenant_id: str, source: str, ciphertext: bytes, *, at: datetime
    ) -> None:
        statement = insert(self._conn, tenant_credentials).values(
            tenant_id=tenant_id, source=source, ciphertext=ciphertext, created_at=at, updated_at=at
        )
        self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "source"],
                set_={
                    "ciphertext": statement.excluded.ciphertext,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )

    def delete_ciphertext(self, tenant_id: str, source: str) -> bool:
        c = tenant_credentials.c
        result = self._conn.execute(
            tenant_credentials.delete().where(c.tenant_id == tenant_id, c.source == source)
        )
        return result.rowcount == 1

    def audit(self, entry: AuditEntry) -> None:
        self._conn.execute(
            credential_audit.insert().values(
                at=entry.at,
                actor=entry.actor,
                tenant_id=entry.tenant_id,
                source=entry.source,
                action=entry.action.value,
                outcome=entry.outcome.value,
            )
        )
