"""A tiny JOSE builder for negative tests, independent of the product's JOSE code.

Built on ``cryptography`` and base64url only (security checklist §0: ``forge``), so a forged token
never depends on the code under test, and PyJWT's encoder is not used either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def sign(alg: str, key: Any, data: bytes) -> bytes:
    """A raw JWS signature over ``data`` (RFC 7518 §3)."""
    if alg in _HMAC:
        return hmac.new(key, data, _HMAC[alg]).digest()
    if alg.startswith("ES"):
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        der = key.sign(data, ec.ECDSA(_HASHES[alg[2:]]()))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg.startswith("RS"):
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PKCS1v15(), _HASHES[alg[2:]]())
    if alg.startswith("PS"):
        assert isinstance(key, rsa.RSAPrivateKey)
        hash_cls = _HASHES[alg[2:]]
        pss = padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
        return key.sign(data, pss, hash_cls())
    if alg == "EdDSA":
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(data)
    raise ValueError(alg)


def forge(
    header: dict[str, Any],
    claims: dict[str, Any] | bytes,
    key: Any = None,
    *,
    sign_alg: str | None = None,
    signature: bytes | None = None,
) -> str:
    """A compact JWS with exactly this header and payload.

    The signature is computed with ``key`` for ``sign_alg`` (default: the header's ``alg``)
    unless ``signature`` is given; ``alg: none`` gets an empty signature.
    """
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{encode_json(header)}.{b64url(payload)}"
    if signature is None:
        alg = sign_alg or header.get("alg", "none")
        signature = b"" if str(alg).lower() == "none" else sign(alg, key, signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


class FakeClock:
    """An injected clock: starts at the real time, moves only when told."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Clock = Callable[[], float]
