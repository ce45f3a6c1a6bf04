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


def _signature(key: SigningKey, signing_input: bytes) -> bytes | None:
    """The JWS signature of ``signing_input``; None for an algorithm not handled here."""
    private = key.private_key
    if key.alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        if private.curve.name != "secp256r1":
            return None
        r, s = decode_dss_signature(private.sign(signing_input, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if key.alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(signing_input)
    if key.alg == "RS256" and isinstance(private, rsa.RSAPrivateKey):
        return private.sign(signing_input, _PKCS1V15, _SHA256)
    return None


def sign(key: SigningKey, claims: dict[str, object], typ: str = TYP) -> str:
    """The compact JWS of ``claims`` signed with ``key`` (header ``alg``, ``kid``, ``typ``)."""
    header = orjson.dumps({"alg": key.alg, "kid": key.kid, "typ": typ})
    signing_input = f"{b64url_encode(header)}.{b64url_encode(orjson.dumps(claims))}".encode()
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
