"""Tenants' own credentials for their sources (bring your own keys), encrypted at rest.

Envelope encryption with AES-256-GCM: a data key per tenant, wrapped under the
master key from ``BIZOS_MASTER_KEY``. Every read is audited. See
``docs/credentials.md``.
"""

from credentials.audit import AuditAction, AuditEntry, AuditOutcome
from credentials.crypto import (
    CredentialError,
    CredentialUnreadable,
    MasterKey,
    MasterKeyError,
    MasterKeyMismatch,
    generate_master_key,
)
from credentials.store import CredentialInfo, CredentialStoreUnavailable
from credentials.vault import (
    CredentialNotFound,
    InvalidCredentialName,
    delete_secret,
    get_secret,
    list_credentials,
    master_key_ring,
    parse_new_master_key,
    read_audit,
    rotate_master_key,
    set_secret,
)

__all__ = [
    "AuditAction",
    "AuditEntry",
    "AuditOutcome",
    "CredentialError",
    "CredentialInfo",
    "CredentialNotFound",
    "CredentialStoreUnavailable",
    "CredentialUnreadable",
    "InvalidCredentialName",
    "MasterKey",
    "MasterKeyError",
    "MasterKeyMismatch",
    "delete_secret",
    "generate_master_key",
    "get_secret",
    "list_credentials",
    "master_key_ring",
    "parse_new_master_key",
    "read_audit",
    "rotate_master_key",
    "set_secret",
]
