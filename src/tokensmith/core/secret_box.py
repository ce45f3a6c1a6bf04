"""Secrets the server must read back (a TOTP key), sealed at rest with AES-256-GCM.

The key is the configured key-encryption key (``TOKENSMITH_KEY_ENCRYPTION_KEY``, the one that
seals private signing keys) when there is one, else a key derived from the server pepper with
HKDF-SHA256. A sealed value names which key sealed it (``k1:`` or ``p1:``), so adding a KEK later
leaves older values readable, and is bound to its owner (associated data: the user id), so a
value copied to another row does not open.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokensmith.core.jose import b64url_decode, b64url_encode

_KEK = "k1:"
_PEPPER = "p1:"


class SecretBoxError(Exception):
    """A sealed value that this server cannot open (wrong or missing key, tampered value)."""


class SecretBox:
    def __init__(self, *, pepper: bytes, kek: bytes | None = None) -> None:
        self._kek = AESGCM(kek) if kek is not None else None
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"tokensmith secret box v1"
        ).derive(pepper)
        self._pepper = AESGCM(derived)

    def seal(self, value: str, *, owner: str) -> str:
        nonce = os.urandom(12)
        prefix, aead = (_KEK, self._kek) if self._kek is not None else (_PEPPER, self._pepper)
        sealed = aead.encrypt(nonce, value.encode("utf-8"), owner.encode("utf-8"))
        return prefix + b64url_encode(nonce + sealed)

    def open(self, stored: str, *, owner: str) -> str:
        if stored.startswith(_KEK):
            if self._kek is None:
                raise SecretBoxError("sealed under a key-encryption key, and none is configured")
            aead = self._kek
        elif stored.startswith(_PEPPER):
            aead = self._pepper
        else:
            raise SecretBoxError("not a sealed value")
        try:
            raw = b64url_decode(stored[3:], lenient=True)
            return aead.decrypt(raw[:12], raw[12:], owner.encode("utf-8")).decode("utf-8")
        except Exception:  # InvalidTag, bad base64: the same for the caller
            raise SecretBoxError("the sealed value does not open under this server's key") from None
