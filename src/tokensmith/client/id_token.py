"""ID token validation for the relying party (OpenID Connect Core 1.0 §3.1.3.7, RFC 8725).

The checks, in order: size cap; the header's ``alg`` is one the provider advertises and we allow
(never ``none``, never an HMAC algorithm: the provider's public JWKS is not a shared secret); the
key comes from the provider's JWKS by ``kid``; then signature, ``iss`` (exact), ``aud`` contains
our ``client_id``, ``azp`` equals it when there are several audiences (or when present), ``exp``,
``iat`` (present, not in the future, not too old), ``sub`` present, ``nonce`` equals ours in
constant time, and ``at_hash`` when the token carries one. The key lookup is injected, so this
module does no I/O of its own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jwt

from tokensmith.client.crypto import b64url
from tokensmith.client.errors import InvalidIdToken

__all__ = ["ASYMMETRIC_ALGS", "allowed_id_token_algs", "at_hash", "validate_id_token"]

ASYMMETRIC_ALGS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_MAX_TOKEN = 16 * 1024

KeyLookup = Callable[[str | None, str], Awaitable[jwt.PyJWK]]


def allowed_id_token_algs(advertised: object, configured: tuple[str, ...] | None) -> frozenset[str]:
    """The provider's ``id_token_signing_alg_values_supported`` (RS256 when absent, per OpenID
    Connect Discovery §3), intersected with our asymmetric list and the app's own restriction."""
    if isinstance(advertised, list) and advertised:
        algs = {a for a in advertised if isinstance(a, str)}
    else:
        algs = {"RS256"}
    algs &= ASYMMETRIC_ALGS
    if configured is not None:
        algs &= set(configured)
    return frozenset(algs)


async def validate_id_token(
    token: str,
    *,
    get_key: KeyLookup,
    issuer: str,
    client_id: str,
    nonce: str,
    allowed_algs: frozenset[str],
    now: float,
    leeway: float = 60.0,
    max_age: float = 600.0,
    access_token: str | None = None,
) -> dict[str, Any]:
    """The verified claims of ``token``, or :class:`InvalidIdToken`."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
        raise InvalidIdToken("id_token missing or too large")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"id_token header unreadable: {exc}") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs:
        raise InvalidIdToken(f"id_token alg {alg!r} not allowed ({sorted(allowed_algs)})")
    if "crit" in header:
        raise InvalidIdToken("id_token with crit header")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidIdToken("id_token kid is not a string")
    try:
        key = await get_key(kid, alg)
    except InvalidIdToken:
        raise
    except LookupError as exc:
        raise InvalidIdToken(f"no key for kid {kid!r}: {exc}") from exc
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"id_token rejected: {type(exc).__name__}: {exc}") from exc
    _check_claims(claims, client_id=client_id, nonce=nonce, now=now, leeway=leeway, max_age=max_age)
    if access_token is not None and "at_hash" in claims:
        expected = at_hash(access_token, alg)
        got = claims["at_hash"]
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), expected.encode()):
            raise InvalidIdToken("at_hash does not match the access token")
    return claims


def _check_claims(
    claims: Mapping[str, Any],
    *,
    client_id: str,
    nonce: str,
    now: float,
    leeway: float,
    max_age: float,
) -> None:
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidIdToken("id_token sub missing or not a string")
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or client_id not in audiences:
        raise InvalidIdToken("id_token aud does not contain our client_id")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise InvalidIdToken("id_token azp is not our client_id")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidIdToken("id_token iat is not a number")
    if iat > now + leeway:
        raise InvalidIdToken("id_token issued in the future")
    if iat < now - max_age - leeway:
        raise InvalidIdToken("id_token too old")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise InvalidIdToken("id_token nonce does not match this login")


def at_hash(access_token: str, alg: str) -> str:
    """OpenID Connect Core §3.1.3.6: left half of the hash of the access token."""
    if alg == "EdDSA":
        digest = hashlib.sha512(access_token.encode("ascii")).digest()
    else:
        bits = alg[-3:]
        name = {"256": "sha256", "384": "sha384", "512": "sha512"}.get(bits)
        if name is None:
            raise InvalidIdToken(f"cannot compute at_hash for alg {alg}")
        digest = hashlib.new(name, access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])
