"""Envelope encryption of tenant secrets: AES-256-GCM all the way down.

Two layers. Each tenant has one random 256-bit data key (DEK); a secret is encrypted
under its tenant's DEK. The DEK is stored only wrapped, i.e. encrypted under the
master key (KEK) from ``BIZOS_MASTER_KEY``. Rotating the master key then means
re-wrapping one small DEK per tenant; no secret's ciphertext is touched.

Associated data binds every ciphertext to where it belongs: a secret to its
(tenant, source), a wrapped DEK to its tenant. A ciphertext copied to another row
fails authentication instead of decrypting as somebody else's credential.

Each master key has a key id (the first 8 hex digits of
HMAC-SHA256(key, "bizos-kek-id")), stored next to every wrapped DEK. It names a key
without revealing it, picks the right key when ``BIZOS_MASTER_KEY`` holds several
(``new,old`` while a rotation rolls out), and turns a wrong key into a clear message
instead of an authentication-tag failure.

Nothing in this module puts key material or plaintext into a message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
# First byte of every blob we write, so the layout can change without guessing.
FORMAT_VERSION = b"\x01"
_KEY_ID_LABEL = b"bizos-kek-id"
_DEK_CONTEXT = b"bizos/tenant-data-key/v1"
_SECRET_CONTEXT = b"bizos/tenant-credential/v1"
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")

HOW_TO_MAKE_A_KEY = (
    "make one with `bizos credentials new-master-key` (32 random bytes, urlsafe base64)"
)


class CredentialError(Exception):
    """Base of every error of the credentials store; messages never hold a secret."""


class MasterKeyError(CredentialError):
    """The master key is missing or is not a 32-byte key in a format we read."""


class MasterKeyMismatch(CredentialError):
    """None of the master keys we hold is the one the stored data keys were wrapped with."""

    def __init__(self, *, held: list[str], expected: str) -> None:
        self.held = held
        self.expected = expected
        super().__init__(
            "BIZOS_MASTER_KEY does not match the key these credentials were stored under "
            f"(key id {', '.join(held)}, expected {expected})"
        )


class CredentialUnreadable(CredentialError):
    """The right master key is held but a ciphertext does not authenticate.

    It was copied from another tenant or source, or altered at rest.
    """


class MasterKey:
    """One 32-byte master key; its repr shows the key id only."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self.key_id = key_id_of(key)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def wrap(self, data_key: DataKey, *, tenant_id: str) -> bytes:
        """The tenant's data key encrypted under this master key."""
        return _seal(self._key, data_key._key, _dek_context(tenant_id))

    def unwrap(self, wrapped: bytes, *, tenant_id: str) -> DataKey:
        try:
            return DataKey(_open(self._key, wrapped, _dek_context(tenant_id)))
        except InvalidTag:
            raise CredentialUnreadable(
                f"the data key of tenant {tenant_id!r} does not authenticate under master key"
                f" {self.key_id}: it was stored for another tenant or altered"
            ) from None

    def encoded(self) -> str:
        """The key as urlsafe base64, the form ``BIZOS_MASTER_KEY`` takes."""
        return base64.urlsafe_b64encode(self._key).decode("ascii")


class DataKey:
    """One tenant's 32-byte data key; kept in an object so no repr or traceback shows it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise CredentialUnreadable(f"a data key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    def __repr__(self) -> str:
        return "DataKey(<hidden>)"

    @classmethod
    def generate(cls) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def encrypt(self, plaintext: bytes, *, tenant_id: str, source: str) -> bytes:
        return _seal(self._key, plaintext, _secret_context(tenant_id, source))

    def decrypt(self, ciphertext: bytes, *, tenant_id: str, source: str) -> bytes:
        try:
            return _open(self._key, ciphertext, _secret_context(tenant_id, source))
        except InvalidTag:
            raise CredentialUnreadable(
                f"the stored credential of tenant {tenant_id!r}, source {source!r} does not"
                " authenticate: it was stored for another tenant or source, or altered"
            ) from None


class MasterKeyRing:
    """The master keys a process holds: the first wraps new data keys, any may unwrap."""

    def __init__(self, keys: list[MasterKey]) -> None:
        unique: list[MasterKey] = []
        for key in keys:
            if key not in unique:
                unique.append(key)
        if not unique:
            raise MasterKeyError(f"BIZOS_MASTER_KEY is not set: {HOW_TO_MAKE_A_KEY}")
        self._keys = tuple(unique)

    def __repr__(self) -> str:
        return f"MasterKeyRing(key_ids={self.key_ids!r})"

    def __iter__(self) -> Iterator[MasterKey]:
        return iter(self._keys)

    @property
    def primary(self) -> MasterKey:
        return self._keys[0]

    @property
    def key_ids(self) -> list[str]:
        return [key.key_id for key in self._keys]

    def find(self, key_id: str) -> MasterKey:
        """The key with ``key_id``, or a clear refusal naming what we hold and what is needed."""
        for key in self._keys:
            if key.key_id == key_id:
                return key
        raise MasterKeyMismatch(held=self.key_ids, expected=key_id)

    def for_new_data_key(self, stored_key_ids: set[str]) -> MasterKey:
        """The key to wrap a new tenant's data key with.

        The one the other tenants' data keys are under: while ``BIZOS_MASTER_KEY`` is
        ``new,old`` ahead of ``rotate-master``, a new tenant must land under ``old``
        with everybody else, or the rotation would find two keys in use.
        """
        if not stored_key_ids or self.primary.key_id in stored_key_ids:
            return self.primary
        for key in self._keys:
            if key.key_id in stored_key_ids:
                return key
        raise MasterKeyMismatch(held=self.key_ids, expected=", ".join(sorted(stored_key_ids)))


def key_id_of(key: bytes) -> str:
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


def parse_master_key(text: str, *, name: str = "BIZOS_MASTER_KEY") -> MasterKey:
    """Read one key: 64 hex characters, or base64 (urlsafe or standard) of 32 bytes.

    Errors say what is wrong with the value, never what the value is.
    """
    value = text.strip()
    if not value:
        raise MasterKeyError(f"{name} is empty: {HOW_TO_MAKE_A_KEY}")
    if _HEX_KEY.match(value):
        return MasterKey(bytes.fromhex(value))
    standard = value.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"{name} is not a key: give {KEY_BYTES} bytes as base64 or as 64 hex characters; "
            f"{HOW_TO_MAKE_A_KEY}"
        ) from None
    if len(raw) != KEY_BYTES:
        raise MasterKeyError(
            f"{name} decodes to {len(raw)} bytes, a master key has {KEY_BYTES}: {HOW_TO_MAKE_A_KEY}"
        )
    return MasterKey(raw)


def parse_master_keys(text: str | None, *, name: str = "BIZOS_MASTER_KEY") -> MasterKeyRing:
    """Read ``BIZOS_MASTER_KEY``: one key, or a comma-separated list, newest first."""
    if text is None or not text.strip():
        raise MasterKeyError(f"{name} is not set: {HOW_TO_MAKE_A_KEY}")
    parts = text.split(",")
    keys = []
    for position, part in enumerate(parts, start=1):
        label = name if len(parts) == 1 else f"{name} (entry {position} of {len(parts)})"
        keys.append(parse_master_key(part, name=label))
    return MasterKeyRing(keys)


def generate_master_key() -> MasterKey:
    return MasterKey(os.urandom(KEY_BYTES))


# -- layout ----------------------------------------------------------------------------


def _field(value: str) -> bytes:
    # Length-prefixed, so ("ab", "c") and ("a", "bc") give different associated data.
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def _dek_context(tenant_id: str) -> bytes:
    return _DEK_CONTEXT + _field(tenant_id)


def _secret_context(tenant_id: str, source: str) -> bytes:
    return _SECRET_CONTEXT + _field(tenant_id) + _field(source)


def _seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """version || nonce || AES-256-GCM ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def _open(key: bytes, blob: bytes, associated_data: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT_VERSION:
        raise InvalidTag()
    nonce = blob[1 : 1 + NONCE_BYTES]
    return AESGCM(key).decrypt(nonce, blob[1 + NONCE_BYTES :], associated_data)
