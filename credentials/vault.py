"""The tenant credentials API: what connectors and ``bizos credentials`` call.

A connector asks ``get_secret(settings, tenant_id=..., source=..., actor=...)`` for
its tenant's key; the read is audited in the same transaction that fetches the
ciphertext, so no secret leaves the store unrecorded. Secrets are taken as ``str``
or ``SecretStr`` and are held as ``SecretStr`` inside, so a traceback that shows
local variables still shows ``**********``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from pydantic import SecretStr

from core.settings import Settings
from core.tenancy import TENANT_ID_PATTERN
from credentials.audit import AuditAction, AuditEntry, AuditOutcome
from credentials.crypto import (
    CredentialError,
    CredentialUnreadable,
    DataKey,
    MasterKey,
    MasterKeyError,
    MasterKeyMismatch,
    MasterKeyRing,
    parse_master_key,
    parse_master_keys,
)
from credentials.store import (
    CredentialInfo,
    CredentialTransaction,
    StoredDataKey,
    credential_store,
)

log = logging.getLogger(__name__)

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MAX_ACTOR_LENGTH = 200


class CredentialNotFound(CredentialError, LookupError):
    """No credential is stored for this tenant and source."""

    def __init__(self, *, tenant_id: str, source: str) -> None:
        self.tenant_id = tenant_id
        self.source = source
        super().__init__(
            f"no credential stored for tenant {tenant_id!r}, source {source!r}; set one with"
            f" `bizos credentials set --tenant {tenant_id} --source {source}`"
        )


class InvalidCredentialName(CredentialError, ValueError):
    """A tenant id, source or actor that could not be one.

    The message does not repeat the value: a secret pasted into the wrong
    argument must not come back in an error.
    """


def master_key_ring(settings: Settings) -> MasterKeyRing:
    """The master keys in ``BIZOS_MASTER_KEY`` (one, or ``new,old`` during a rotation)."""
    value = settings.master_key.get_secret_value() if settings.master_key else None
    return parse_master_keys(value)


def set_secret(
    settings: Settings,
    *,
    tenant_id: str,
    source: str,
    secret: str | SecretStr,
    actor: str,
) -> None:
    """Store (or replace) the tenant's credential for ``source``, encrypted."""
    _check_names(tenant_id, source, actor)
    secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
    if not secret.get_secret_value():
        raise InvalidCredentialName("refusing to store an empty secret")
    ring = master_key_ring(settings)
    now = datetime.now(UTC)
    with credential_store(settings).transaction() as tx:
        data_key = _tenant_data_key(tx, ring, tenant_id, now)
        tx.put_ciphertext(
            tenant_id,
            source,
            data_key.encrypt(
                secret.get_secret_value().encode("utf-8"), tenant_id=tenant_id, source=source
            ),
            at=now,
        )
        tx.audit(_entry(now, actor, tenant_id, source, AuditAction.SET, AuditOutcome.OK))
    log.info("credential set: tenant %s, source %s, by %s", tenant_id, source, actor)


def get_secret(settings: Settings, *, tenant_id: str, source: str, actor: str) -> str:
    """The tenant's credential for ``source``; every call is written to the audit log.

    Raises ``CredentialNotFound``, ``MasterKeyMismatch`` (wrong ``BIZOS_MASTER_KEY``)
    or ``CredentialUnreadable`` (a ciphertext moved or altered); the failed attempts
    are audited too.
    """
    _check_names(tenant_id, source, actor)
    ring = master_key_ring(settings)
    now = datetime.now(UTC)
    secret: SecretStr | None = None
    failure: CredentialError | None = None
    with credential_store(settings).transaction() as tx:
        stored_key = tx.data_key(tenant_id)
        ciphertext = tx.ciphertext(tenant_id, source)
        if stored_key is None or ciphertext is None:
            outcome = AuditOutcome.NOT_FOUND
            failure = CredentialNotFound(tenant_id=tenant_id, source=source)
        else:
            try:
                data_key = ring.find(stored_key.key_id).unwrap(
                    stored_key.wrapped, tenant_id=tenant_id
                )
                secret = SecretStr(
                    data_key.decrypt(ciphertext, tenant_id=tenant_id, source=source).decode("utf-8")
                )
                outcome = AuditOutcome.OK
            except (MasterKeyMismatch, CredentialUnreadable) as exc:
                outcome = AuditOutcome.REFUSED
                failure = exc
        tx.audit(_entry(now, actor, tenant_id, source, AuditAction.READ, outcome))
    log.info("credential read: tenant %s, source %s, by %s: %s", tenant_id, source, actor, outcome)
    if failure is not None:
        raise failure
    assert secret is not None
    return secret.get_secret_value()


def delete_secret(settings: Settings, *, tenant_id: str, source: str, actor: str) -> bool:
    """Remove the tenant's credential for ``source``; False when there was none."""
    _check_names(tenant_id, source, actor)
    now = datetime.now(UTC)
    with credential_store(settings).transaction() as tx:
        deleted = tx.delete_ciphertext(tenant_id, source)
        outcome = AuditOutcome.OK if deleted else AuditOutcome.NOT_FOUND
        tx.audit(_entry(now, actor, tenant_id, source, AuditAction.DELETE, outcome))
    log.info(
        "credential delete: tenant %s, source %s, by %s: %s", tenant_id, source, actor, outcome
    )
    return deleted


def list_credentials(settings: Settings, tenant_id: str | None = None) -> list[CredentialInfo]:
    """What is stored, by tenant and source: never the values. All tenants when None."""
    if tenant_id is not None:
        _check_tenant(tenant_id)
    return credential_store(settings).list_credentials(tenant_id=tenant_id)


def read_audit(
    settings: Settings, tenant_id: str | None = None, *, limit: int | None = None
) -> list[AuditEntry]:
    """Audit rows, newest first; all tenants when ``tenant_id`` is None."""
    if tenant_id is not None:
        _check_tenant(tenant_id)
    return credential_store(settings).read_audit(tenant_id=tenant_id, limit=limit)


def rotate_master_key(
    settings: Settings,
    new_key: str | SecretStr | MasterKey,
    *,
    actor: str = "system:rotate-master",
) -> int:
    """Re-wrap every tenant's data key under ``new_key``; the number re-wrapped.

    ``settings.master_key`` must hold the key the data keys are under now (alone, or
    in a ``new,old`` list). Secrets' ciphertexts are not touched. All data keys change
    in one transaction: readers see all under the old key or all under the new. Data
    keys already under ``new_key`` are skipped, so an interrupted or repeated rotation
    is safe to run again.
    """
    _check_actor(actor)
    new = new_key if isinstance(new_key, MasterKey) else parse_new_master_key(new_key)
    ring = master_key_ring(settings)
    now = datetime.now(UTC)
    rewrapped = 0
    with credential_store(settings).transaction() as tx:
        tx.lock_data_keys(for_rotation=True)
        for stored in tx.all_data_keys():
            if stored.key_id == new.key_id:
                continue
            tenant_id = stored.tenant_id
            data_key = ring.find(stored.key_id).unwrap(stored.wrapped, tenant_id=tenant_id)
            tx.rewrap_data_key(
                StoredDataKey(tenant_id, new.key_id, new.wrap(data_key, tenant_id=tenant_id)),
                at=now,
            )
            tx.audit(_entry(now, actor, tenant_id, None, AuditAction.ROTATE, AuditOutcome.OK))
            rewrapped += 1
    log.info("master key rotated to key id %s: %d data keys re-wrapped", new.key_id, rewrapped)
    return rewrapped


def parse_new_master_key(value: str | SecretStr, *, name: str = "the new master key") -> MasterKey:
    """Exactly one key (a rotation goes to one key), in the ``BIZOS_MASTER_KEY`` formats."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if "," in text:
        raise MasterKeyError(f"{name} holds several keys; a rotation takes exactly one")
    return parse_master_key(text, name=name)


# -- helpers ---------------------------------------------------------------------------


def _tenant_data_key(
    tx: CredentialTransaction, ring: MasterKeyRing, tenant_id: str, now: datetime
) -> DataKey:
    """The tenant's data key, made and stored (wrapped) on its first secret."""
    stored = tx.data_key(tenant_id)
    if stored is None:
        # Hold off a rotation until this data key is in, under the key it rotates from.
        tx.lock_data_keys(for_rotation=False)
        data_key = DataKey.generate()
        master = ring.for_new_data_key(tx.data_key_ids())
        created = StoredDataKey(
            tenant_id, master.key_id, master.wrap(data_key, tenant_id=tenant_id)
        )
        if tx.insert_data_key(created, at=now):
            return data_key
        stored = tx.data_key(tenant_id)  # another writer made it first: use theirs
        assert stored is not None
    return ring.find(stored.key_id).unwrap(stored.wrapped, tenant_id=tenant_id)


def _entry(
    at: datetime,
    actor: str,
    tenant_id: str,
    source: str | None,
    action: AuditAction,
    outcome: AuditOutcome,
) -> AuditEntry:
    return AuditEntry(
        at=at, actor=actor, tenant_id=tenant_id, source=source, action=action, outcome=outcome
    )


def _check_tenant(tenant_id: str) -> None:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.match(tenant_id):
        raise InvalidCredentialName(
            "invalid tenant id: use lower-case letters, digits, '-' or '_'"
            " (at most 63 characters, starting with a letter or digit)"
        )


def _check_names(tenant_id: str, source: str, actor: str) -> None:
    _check_tenant(tenant_id)
    if not isinstance(source, str) or not SOURCE_PATTERN.match(source):
        raise InvalidCredentialName(
            "invalid source name: use lower-case letters, digits, '-', '_' or '.'"
            " (at most 63 characters, starting with a letter or digit), e.g. 'stripe'"
        )
    _check_actor(actor)


def _check_actor(actor: str) -> None:
    if (
        not isinstance(actor, str)
        or not actor.strip()
        or len(actor) > MAX_ACTOR_LENGTH
        or not actor.isprintable()
    ):
        raise InvalidCredentialName(
            f"actor must name who asks, e.g. 'dagster:stripe_charges' (printable, at most"
            f" {MAX_ACTOR_LENGTH} characters)"
        )
