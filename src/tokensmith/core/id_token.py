"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §3.1.3.7).

Claims: ``iss``, ``sub``, ``aud`` (the client id), ``exp``, ``iat``, ``auth_time`` (always, so
``max_age`` can be checked), ``nonce`` (echoed when the request had one), ``at_hash`` (left half of
the access token's hash with the signature's hash function), ``amr``, ``sid`` (the session, for
logout). Signed RS256 unless the client registered ``id_token_signed_response_alg``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jwt

from tokensmith.core.jose import b64url_encode
from tokensmith.core.keys import KeyRing, SigningKey

TYP = "JWT"


def token_hash(value: str, alg: str) -> str:
    """``at_hash`` / ``c_hash``: base64url of the left half of the hash of ``value``.

    SHA-256 for RS256 and ES256; SHA-512 for EdDSA with Ed25519 (OpenID Connect Core errata).
    """
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def session_id(session_digest: str) -> str:
    """The public ``sid`` of a session (not its secret, not its storage key)."""
    return hashlib.sha256(("sid|" + session_digest).encode()).hexdigest()[:32]


def mint(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    client_id: str,
    now: int,
    ttl: int,
    auth_time: int,
    nonce: str | None,
    access_token: str | None,
    sid: str | None,
    amr: tuple[str, ...] = ("pwd",),
    extra: dict[str, Any] | None = None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "exp": now + ttl,
        "iat": now,
        "auth_time": auth_time,
        "amr": list(amr),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["at_hash"] = token_hash(access_token, key.alg)
    if sid is not None:
        claims["sid"] = sid
    if extra:
        claims.update(extra)
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=key.headers(TYP))


def audiences(claims: dict[str, Any]) -> tuple[str, ...]:
    """The ``aud`` of verified claims as a tuple: one string or a list of them (OpenID Connect
    Core §2); anything else is no audience."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


def verify_hint(keys: KeyRing, token: str, *, issuer: str) -> dict[str, Any]:
    """Claims of an ID token this server issued, expired or not (``id_token_hint``).

    Raises ``jwt.PyJWTError`` when it is not one of ours.
    """
    if len(token) > 8192:
        raise jwt.InvalidTokenError("too long")
    header = jwt.get_unverified_header(token)
    if header.get("typ", TYP) != TYP:
        raise jwt.InvalidTokenError("not an ID token")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise jwt.InvalidTokenError("unknown key")
    claims: dict[str, Any] = jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=[key.alg],
        issuer=issuer,
        # a hint is only ever checked for who signed it and for whom: not for time (and
        # "iat" against the wall clock would defeat the server's injected clock)
        options={
            "verify_aud": False,
            "verify_exp": False,
            "verify_iat": False,
            "require": ["sub", "aud", "iat"],
        },
    )
    if "events" in claims:
        # a Security Event Token, e.g. a back-channel logout token sent without its typ: never
        # an ID token (OpenID Connect Back-Channel Logout 1.0 §2.4, RFC 8417 §2.2)
        raise jwt.InvalidTokenError("a security event token is not an ID token")
    return claims
