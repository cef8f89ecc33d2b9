"""Secrets sealed at rest: AES-256-GCM, a fresh 96-bit nonce per value, associated data that binds
the value to its org, row and field, and the key id stored with the value so keys can rotate.

Sealed form: ``v1:<key id>:<base64url(nonce || ciphertext+tag)>``.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretUnavailable(Exception):
    """The value cannot be opened: unknown key id, tampered data, or wrong binding."""


class Sealer:
    def __init__(self, keys: dict[str, bytes], primary: str) -> None:
        if primary not in keys:
            raise ValueError(f"primary key id {primary!r} is not configured")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.primary = primary

    @staticmethod
    def binding(org_id: object, row_id: object, field: str) -> bytes:
        return f"{org_id}|{row_id}|{field}".encode()

    def seal(self, plaintext: str, aad: bytes) -> str:
        nonce = os.urandom(12)
        ct = self._aead[self.primary].encrypt(nonce, plaintext.encode(), aad)
        return f"v1:{self.primary}:{base64.urlsafe_b64encode(nonce + ct).decode()}"

    @staticmethod
    def key_id(sealed: str) -> str:
        parts = sealed.split(":", 2)
        return parts[1] if len(parts) == 3 else ""

    def open(self, sealed: str, aad: bytes) -> str:
        try:
            version, kid, b64 = sealed.split(":", 2)
        except ValueError:
            raise SecretUnavailable("malformed sealed value") from None
        aead = self._aead.get(kid)
        if version != "v1" or aead is None:
            raise SecretUnavailable(f"sealing key {kid!r} is not configured")
        try:
            raw = base64.urlsafe_b64decode(b64)
            return aead.decrypt(raw[:12], raw[12:], aad).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnavailable("sealed value failed authentication") from exc

    def rewrap(self, sealed: str, aad: bytes) -> str:
        """Re-seal under the primary key (no-op when already on it)."""
        if self.key_id(sealed) == self.primary:
            return sealed
        return self.seal(self.open(sealed, aad), aad)
