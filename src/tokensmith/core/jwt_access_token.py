"""JWT access tokens (RFC 9068).

Header ``typ: at+jwt`` (§2.1); claims ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``,
``jti`` (§2.2), ``scope`` (§2.2.3), ``auth_time`` for user tokens (§2.2.1). For client credentials
``sub`` is the client id (§2.2; RFC 9700 §2.6 asks that resource servers can tell the two apart:
such tokens carry no ``auth_time``).

The token endpoint's hot path: the compact JWS (RFC 7515 §7.1) is built here with orjson and one
``cryptography`` signature, without PyJWT's generic encoder (its ``json.dumps``, header merging
and key checks cost about as much again as an ES256 signature). The result is the same token
PyJWT would make: the header members ``alg``, ``kid``, ``typ`` in that order, compact JSON, and
for ES256 the raw ``r || s`` signature of RFC 7518 §3.4.
"""

from __future__ import annotations

from typing import cast

import jwt
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tokensmith.core.jose import b64url_encode
from tokensmith.core.keys import SigningKey
from tokensmith.core.secrets import new_id

TYP = "at+jwt"

_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_PKCS1V15 = padding.PKCS1v15()


def _raw_ecdsa(der: bytes, size: int) -> bytes:
    """RFC 7518 §3.4's ``r || s``, each ``size`` bytes, from the DER ``ECDSA-Sig-Value`` that
    OpenSSL gives (a SEQUENCE of two INTEGERs). A P-256 signature has short-form lengths only,
    read here by slicing (a quarter of the cost of ``decode_dss_signature`` and two
    ``int.to_bytes``, on every token); whatever does not have exactly that shape goes through
    ``decode_dss_signature``, which refuses what is not DER."""
    n = len(der)
    if 8 <= n < 0x80 and der[0] == 0x30 and der[1] == n - 2 and der[2] == 0x02:
        r_end = 4 + der[3]
        if r_end + 2 < n and der[r_end] == 0x02 and der[r_end + 1] == n - r_end - 2:
            r, s = der[4:r_end], der[r_end + 2 :]
            # positive, minimal INTEGERs: a leading 0 only before a byte with its high bit set
            if _fits(r, size) and _fits(s, size):
                return r[-size:].rjust(size, b"\0") + s[-size:].rjust(size, b"\0")
    r_int, s_int = decode_dss_signature(der)
    return r_int.to_bytes(size, "big") + s_int.to_bytes(size, "big")


def _fits(value: bytes, size: int) -> bool:
    """Whether ``value`` is the content of a positive, minimally encoded DER INTEGER of at most
    ``size`` bytes."""
    if not value or value[0] & 0x80:
        return False
    if value[0] == 0:
        return len(value) > 1 and value[1] & 0x80 != 0 and len(value) <= size + 1
    return len(value) <= size


def _signature(key: SigningKey, signing_input: bytes) -> bytes | None:
    """The JWS signature of ``signing_input``; None for an algorithm not handled here."""
    private = key.private_key
    kind = _KINDS.get(type(private)) or _kind(private)
    if kind == "ec" and key.alg == "ES256":
        ec_key = cast(ec.EllipticCurvePrivateKey, private)
        if ec_key.curve.name != "secp256r1":
            return None
        return _raw_ecdsa(ec_key.sign(signing_input, _ECDSA_SHA256), 32)
    if kind == "ed25519" and key.alg == "EdDSA":
        return cast(ed25519.Ed25519PrivateKey, private).sign(signing_input)
    if kind == "rsa" and key.alg == "RS256":
        return cast(rsa.RSAPrivateKey, private).sign(signing_input, _PKCS1V15, _SHA256)
    return None


_KINDS: dict[type, str] = {}
"""The kind of private key (``_kind``) of each key class seen: the ``isinstance`` checks against
``cryptography``'s abstract classes cost more than the rest of ``_signature``'s own work."""


def _kind(private: object) -> str:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        kind = "ec"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        kind = "ed25519"
    elif isinstance(private, rsa.RSAPrivateKey):
        kind = "rsa"
    else:
        kind = "other"
    _KINDS[type(private)] = kind
    return kind


def _header(key: SigningKey, typ: str) -> str:
    """The base64url JWS header of ``key`` for ``typ`` (``alg``, ``kid``, ``typ``, in that
    order), made once per key and type."""
    cache_key = (key.alg, key.kid, typ)
    header = _HEADERS.get(cache_key)
    if header is None:
        if len(_HEADERS) >= 64:  # keys rotate: a bounded memo
            _HEADERS.clear()
        header = _HEADERS[cache_key] = b64url_encode(
            orjson.dumps({"alg": key.alg, "kid": key.kid, "typ": typ})
        )
    return header


_HEADERS: dict[tuple[str, str, str], str] = {}


def sign(key: SigningKey, claims: dict[str, object], typ: str = TYP) -> str:
    """The compact JWS of ``claims`` signed with ``key`` (header ``alg``, ``kid``, ``typ``)."""
    signing_input = f"{_header(key, typ)}.{b64url_encode(orjson.dumps(claims))}".encode()
    signature = _signature(key, signing_input)
    if signature is None:  # any other key: PyJWT's generic path
        return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=key.headers(typ))
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


def mint(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str,
    client_id: str,
    scopes: tuple[str, ...],
    now: int,
    ttl: int,
    auth_time: int | None = None,
    jti: str | None = None,
) -> tuple[str, str]:
    """Sign an access token; return ``(token, jti)``."""
    jti = jti or new_id()
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "jti": jti,
        "iat": now,
        "exp": now + ttl,
    }
    if auth_time is not None:
        claims["auth_time"] = auth_time
    return sign(key, claims), jti
