"""JWT access tokens (RFC 9068).

Header ``typ: at+jwt`` (§2.1); claims ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``,
``jti`` (§2.2), ``scope`` (§2.2.3), ``auth_time`` for user tokens (§2.2.1). For client credentials
``sub`` is the client id (§2.2; RFC 9700 §2.6 asks that resource servers can tell the two apart:
such tokens carry no ``auth_time``).
"""

from __future__ import annotations

import jwt

from tokensmith.core.keys import SigningKey
from tokensmith.core.secrets import new_id

TYP = "at+jwt"


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
    token = jwt.encode(claims, key.private_key, algorithm=key.alg, headers=key.headers(TYP))
    return token, jti
