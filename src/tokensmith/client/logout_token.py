"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6; RFC 8725 §3.11).

A logout token is accepted only when: ``typ`` is ``logout+jwt`` (explicit typing, so an ID token
can never be replayed as a logout token); the ``alg`` is one the provider advertises (never
``none`` or HMAC); the signature verifies with the provider's JWKS; ``iss`` and ``aud`` are exact;
``iat`` and ``exp`` are present and ``exp`` is short (at most ``max_lifetime`` ahead); ``events``
holds the back-channel-logout member as a JSON object; ``sub`` or ``sid`` is present; ``jti`` is
present (§2.4 REQUIRED: without it a captured token could be replayed; the caller records each
``jti`` until the token expires and refuses it a second time); there is no ``nonce``. Pure code:
the key lookup is injected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from tokensmith.client.errors import InvalidIdToken
from tokensmith.client.id_token import KeyLookup

__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LogoutRequest", "validate_logout_token"]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_MAX_TOKEN = 16 * 1024
_MAX_JTI = 512


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    subject: str | None
    sid: str | None
    jti: str
    exp: float


async def validate_logout_token(
    token: str,
    *,
    get_key: KeyLookup,
    issuer: str,
    client_id: str,
    allowed_algs: frozenset[str],
    now: float,
    leeway: float = 60.0,
    max_lifetime: float = 300.0,
) -> LogoutRequest:
    """The logout request a valid token carries; :class:`InvalidIdToken` otherwise."""
    if not token or len(token) > _MAX_TOKEN:
        raise InvalidIdToken("logout token missing or too large")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"logout token header unreadable: {exc}") from exc
    if header.get("typ") != "logout+jwt":
        raise InvalidIdToken(f"logout token typ {header.get('typ')!r} is not logout+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs:
        raise InvalidIdToken(f"logout token alg {alg!r} not allowed")
    if "crit" in header:
        raise InvalidIdToken("logout token with crit header")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidIdToken("logout token kid is not a string")
    key = await get_key(kid, alg)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "aud", "iat", "exp"], "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"logout token rejected: {type(exc).__name__}: {exc}") from exc
    if "nonce" in claims:
        raise InvalidIdToken("logout token carries a nonce")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise InvalidIdToken("logout token without the back-channel logout event")
    exp, iat = claims["exp"], claims["iat"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
        raise InvalidIdToken("logout token exp/iat not numbers")
    if exp > now + max_lifetime + leeway or iat > now + leeway:
        raise InvalidIdToken("logout token lifetime too long or issued in the future")
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise InvalidIdToken("logout token azp is not our client_id")
    sub, sid, jti = claims.get("sub"), claims.get("sid"), claims.get("jti")
    sub = sub if isinstance(sub, str) and sub else None
    sid = sid if isinstance(sid, str) and sid else None
    if sub is None and sid is None:
        raise InvalidIdToken("logout token has neither sub nor sid")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise InvalidIdToken("logout token without a usable jti (replay protection)")
    return LogoutRequest(subject=sub, sid=sid, jti=jti, exp=float(exp))
