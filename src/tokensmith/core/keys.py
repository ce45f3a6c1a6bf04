"""Signing keys: generation, JWK form, encryption at rest, and the key ring used to sign.

Asymmetric algorithms only (RFC 9068 §2.1 forbids ``none``; HMAC would make every resource server
able to forge tokens). The ``kid`` is the RFC 7638 JWK thumbprint. Private keys at rest are PEM,
encrypted with AES-256-GCM under the key-encryption key when one is configured. A key is published
in the JWKS from ``created_at`` and signs only from ``activates_at`` (publish-ahead), so resource
servers with a cached JWKS learn a key before they see a token signed with it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokensmith.core.jose import b64url_decode, b64url_encode

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
SUPPORTED_ALGS = ("ES256", "EdDSA", "RS256")
_ENCRYPTED_PREFIX = "aesgcm:v1:"

KeyState = Literal["next", "signing", "retiring", "retired"]
"""What a key does at a given time: ``next`` published, not yet signing; ``signing`` the key
new tokens of its algorithm are signed with; ``retiring`` no longer signing, still published so
that the tokens it signed verify; ``retired`` no longer published (``keys prune`` removes it)."""


class KeyLoadError(Exception):
    """A key cannot be loaded (wrong or missing key-encryption key, corrupt data)."""


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def public_jwk(key: PrivateKey, alg: str) -> dict[str, str]:
    """The public JWK (with ``kid``, ``alg``, ``use``) of a private key."""
    jwk: dict[str, str] = json.loads(
        jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key())
    )
    core = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n", "x", "y")}
    thumbprint = hashlib.sha256(
        json.dumps(core, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    return {**core, "kid": b64url_encode(thumbprint), "alg": alg, "use": "sig"}


def encode_private_key(key: PrivateKey, *, kid: str, kek: bytes | None) -> str:
    """PEM (PKCS#8), encrypted under ``kek`` with ``kid`` as associated data when a KEK is set."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if kek is None:
        return pem.decode("ascii")
    nonce = os.urandom(12)
    sealed = AESGCM(kek).encrypt(nonce, pem, kid.encode())
    return _ENCRYPTED_PREFIX + b64url_encode(nonce + sealed)


def is_encrypted(stored: str) -> bool:
    return stored.startswith(_ENCRYPTED_PREFIX)


def decode_private_key(stored: str, *, kid: str, kek: bytes | None) -> PrivateKey:
    """The key that :func:`encode_private_key` stored as ``stored``.

    Remembered per process (the last 64 distinct ``stored``, ``kid`` and ``kek``): the keys are
    read again at every reload (``key_reload_interval``) and the parse of an RSA key checks the
    key, about 35 ms of the event loop for each one. What failed to load is never remembered, and
    a wrong ``kek`` is a different entry, so it fails as it would the first time."""
    return _decode_private_key(stored, kid, kek)


@functools.lru_cache(maxsize=64)
def _decode_private_key(stored: str, kid: str, kek: bytes | None) -> PrivateKey:
    if is_encrypted(stored):
        if kek is None:
            raise KeyLoadError(
                f"signing key {kid} is encrypted but no key-encryption key is configured "
                "(set TOKENSMITH_KEY_ENCRYPTION_KEY)"
            )
        raw = b64url_decode(stored[len(_ENCRYPTED_PREFIX) :], lenient=True)
        try:
            pem = AESGCM(kek).decrypt(raw[:12], raw[12:], kid.encode())
        except Exception:  # cryptography raises InvalidTag; any failure means the same here
            raise KeyLoadError(
                f"signing key {kid} cannot be decrypted: wrong key-encryption key"
            ) from None
    else:
        pem = stored.encode("ascii")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)
    ):
        raise KeyLoadError(f"signing key {kid} has an unsupported type")
    return key


def parse_kek(value: str | None) -> bytes | None:
    """Decode the configured key-encryption key: base64url of exactly 32 bytes."""
    if value is None:
        return None
    try:
        raw = b64url_decode(value.strip(), lenient=True)
    except (ValueError, TypeError):
        raise KeyLoadError("the key-encryption key must be base64url") from None
    if len(raw) != 32:
        raise KeyLoadError("the key-encryption key must be 32 bytes (base64url-encoded)")
    return raw


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)
    public_jwk: dict[str, str]
    created_at: int
    activates_at: int
    retired_at: int | None = None
    expires_at: int | None = None

    def headers(self, typ: str) -> dict[str, Any]:
        return {"kid": self.kid, "typ": typ}


class KeyRing:
    """The keys the server publishes and signs with; immutable once built."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self._keys = sorted(keys, key=lambda k: (k.activates_at, k.created_at))
        self._by_kid = {k.kid: k for k in self._keys}
        self._signing: dict[str, tuple[SigningKey, float, float]] = {}
        """``signing_key``'s answer for an algorithm and the span of time it holds for."""

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return tuple(self._keys)

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def signing_key(self, alg: str, now: int) -> SigningKey:
        """The newest key for ``alg`` that is active at ``now`` (activated, not yet retired).

        The answer holds from the last activation or retirement of an ``alg`` key at or before
        ``now`` until the next one after it: it is kept for that span (the ring never
        changes), and every token signed in it takes it without looking at the keys again."""
        kept = self._signing.get(alg)
        if kept is not None and kept[1] <= now < kept[2]:
            return kept[0]
        candidates = [
            k
            for k in self._keys
            if k.alg == alg
            and k.activates_at <= now
            and (k.retired_at is None or k.retired_at > now)
        ]
        if not candidates:
            raise LookupError(f"no active signing key for {alg}")
        changes = [k.activates_at for k in self._keys if k.alg == alg]
        changes += [k.retired_at for k in self._keys if k.alg == alg and k.retired_at is not None]
        since = max((t for t in changes if t <= now), default=-math.inf)
        until = min((t for t in changes if t > now), default=math.inf)
        self._signing[alg] = (candidates[-1], since, until)
        return candidates[-1]

    def state(self, key: SigningKey, now: int) -> KeyState:
        """What ``key`` (one of this ring's) does at ``now``."""
        if key.activates_at > now:
            return "next"
        if key.expires_at is not None and key.expires_at <= now:
            return "retired"
        try:
            signing = self.signing_key(key.alg, now)
        except LookupError:
            return "retiring"
        return "signing" if signing.kid == key.kid else "retiring"

    def has_active(self, alg: str, now: int) -> bool:
        try:
            self.signing_key(alg, now)
        except LookupError:
            return False
        return True

    def jwks(self, now: int) -> dict[str, list[dict[str, str]]]:
        """The published set: every key not yet expired (pending, active and retired ones)."""
        return {
            "keys": [k.public_jwk for k in self._keys if k.expires_at is None or k.expires_at > now]
        }
