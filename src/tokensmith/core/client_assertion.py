"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3; OpenID Connect Core §9).

The assertion is a JWS signed with a key from the client's registered JWKS: ``iss`` and ``sub``
are the client id, ``aud`` names the token endpoint or the issuer, ``exp`` is required and the
lifetime bounded, ``jti`` is required and single-use (the caller records it). Only asymmetric
algorithms; the key's own algorithm must match the header's (no ``alg`` confusion); ``jku``,
``x5u``, ``jwk`` headers are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jwt

from tokensmith.core.errors import InvalidClient
from tokensmith.core.models import Client

ASSERTION_ALGS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
MAX_LIFETIME = 300
MAX_SIZE = 8192
LEEWAY = 30


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    jti: str
    expires_at: int


def unverified_subject(assertion: str) -> str:
    """The client id an assertion claims, to look the client up before verifying."""
    if len(assertion) > MAX_SIZE:
        raise InvalidClient("the client assertion is too large")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidClient("the client assertion is not a valid JWT") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128 or not sub.isprintable():
        raise InvalidClient("the client assertion has no usable sub")
    return sub


def _keys(client: Client) -> dict[str, jwt.PyJWK]:
    if not client.jwks:
        raise InvalidClient("the client has no registered keys", detail="no jwks")
    try:
        keyset = jwt.PyJWKSet.from_dict(json.loads(client.jwks))
    except (jwt.PyJWTError, ValueError):
        raise InvalidClient("client authentication failed", detail="unusable jwks") from None
    return {k.key_id or "": k for k in keyset.keys}


def verify(
    assertion: str,
    client: Client,
    *,
    audiences: tuple[str, ...],
    now: int,
) -> VerifiedAssertion:
    """Verify the assertion's signature and claims; raise ``invalid_client``."""
    fail = InvalidClient("client authentication failed")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise fail from None
    alg = header.get("alg")
    if alg not in ASSERTION_ALGS:
        raise InvalidClient("the client assertion's algorithm is not allowed", detail=str(alg))
    keys = _keys(client)
    kid = header.get("kid")
    if isinstance(kid, str):
        key = keys.get(kid)
    elif len(keys) == 1:
        key = next(iter(keys.values()))
    else:
        key = None
    if key is None:
        raise InvalidClient("client authentication failed", detail=f"unknown kid {kid!r}")
    key_alg = key.algorithm_name
    if key_alg != alg and not (key_alg == "RS256" and alg == "PS256"):
        raise InvalidClient("client authentication failed", detail="alg does not match the key")
    try:
        claims = jwt.decode(
            assertion,
            key.key,
            algorithms=[alg],
            audience=list(audiences),
            issuer=client.client_id,
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "sub", "aud", "jti"], "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidClient("client authentication failed", detail=str(exc)) from None
    if claims["sub"] != client.client_id:
        raise InvalidClient("client authentication failed", detail="sub is not the client id")
    exp = claims["exp"]
    if not isinstance(exp, int) or exp - now > MAX_LIFETIME + LEEWAY:
        raise InvalidClient("the client assertion lives too long (at most 5 minutes)")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise InvalidClient("the client assertion needs a jti")
    return VerifiedAssertion(jti=jti, expires_at=exp)
