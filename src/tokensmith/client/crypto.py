"""Keys derived from the application's secret, AES-GCM sealing and keyed digests.

One secret (at least 32 bytes of entropy) is stretched with HKDF-SHA256 into one key per purpose, so
that a value sealed for one purpose (the login transaction cookie) can never be opened as another
(an upstream token). Sealed values are ``base64url(nonce || ciphertext || tag)``; the associated
data binds each value to where it is used (cookie name, user and provider).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokensmith.core.jose import b64url_decode
from tokensmith.core.jose import b64url_encode as b64url

__all__ = ["CookieKeyRing", "SealedBox", "b64url", "b64url_decode"]

_NONCE = 12


class SealedBox:
    """AES-256-GCM with a random 96-bit nonce per message."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SealedBox(<key hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(_NONCE)
        return b64url(nonce + self._aead.encrypt(nonce, plaintext, aad))

    def open(self, sealed: str, aad: bytes) -> bytes | None:
        """The plaintext, or ``None`` when the value was forged, altered or sealed elsewhere."""
        try:
            raw = b64url_decode(sealed)
        except ValueError:
            return None
        if len(raw) < _NONCE + 16:
            return None
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad)
        except InvalidTag:
            return None


class CookieKeyRing:
    """Per-purpose keys derived from the application secret: the transaction cookie, the session
    cookie's digest and CSRF token, the sealed upstream tokens (not the authorization server's
    signing-key ``KeyRing``)."""

    __slots__ = ("csrf_key", "digest_key", "tokens", "transactions")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the client toolkit secret must be at least 32 bytes")
        self.transactions = SealedBox(_derive(secret, b"tokensmith.client.transaction"))
        self.tokens = SealedBox(_derive(secret, b"tokensmith.client.upstream-tokens"))
        self.digest_key = _derive(secret, b"tokensmith.client.digest")
        self.csrf_key = _derive(secret, b"tokensmith.client.csrf")

    def __repr__(self) -> str:
        return "CookieKeyRing(<keys hidden>)"

    def digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value``: how session ids and transaction ids are stored."""
        mac = hmac.new(self.digest_key, purpose.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return b64url(mac.digest())

    def csrf_token(self, session_digest: str) -> str:
        return b64url(hmac.new(self.csrf_key, session_digest.encode(), hashlib.sha256).digest())


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
