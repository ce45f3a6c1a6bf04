"""What a token is and whether it is active: for introspection (RFC 7662,
``core.introspection``), revocation (RFC 7009, ``core.revocation``) and UserInfo
(``core.userinfo``).

Token kinds are recognised by their prefixes (``ts_rt_`` refresh, ``ts_at_`` opaque access
token) or as one of our JWTs (signature checked against our own keys). A token is active when it
is known, unexpired, not revoked, not rotated (refresh), its grant is not revoked and its
user is not disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jwt

from tokensmith.core.accounts import live_grant
from tokensmith.core.jwt_access_token import TYP
from tokensmith.core.models import Grant
from tokensmith.core.secrets import ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, digest

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.ports import Stores

MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class TokenInfo:
    kind: Literal["access_token", "refresh_token"]
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    audience: str
    issued_at: int
    expires_at: int
    jti: str | None
    grant_id: str | None

    def introspection(self, issuer: str) -> dict[str, object]:
        """The RFC 7662 §2.2 response for an active token."""
        out: dict[str, object] = {
            "active": True,
            "scope": " ".join(self.scopes),
            "client_id": self.client_id,
            "sub": self.subject,
            "exp": self.expires_at,
            "iat": self.issued_at,
            "iss": issuer,
            "aud": self.audience,
            "token_type": "Bearer" if self.kind == "access_token" else "refresh_token",
        }
        if self.jti is not None:
            out["jti"] = self.jti
        return out


INACTIVE: dict[str, object] = {"active": False}


def verify_own_jwt(context: ServerContext, token: str, *, verify_exp: bool) -> dict[str, Any]:
    """Claims of an access token this server signed; raises ``jwt.PyJWTError`` otherwise. The
    times (``exp`` unless ``verify_exp`` is false, ``iat``, ``nbf``) are checked against the
    server's injected clock, not the wall clock."""
    header = jwt.get_unverified_header(token)
    if header.get("typ") != TYP:
        raise jwt.InvalidTokenError("not an access token")
    kid = header.get("kid")
    key = context.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise jwt.InvalidTokenError("unknown key")
    claims: dict[str, Any] = jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=[key.alg],
        issuer=context.issuer,
        options={
            "verify_aud": False,
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
            "require": ["exp", "jti"],
        },
    )
    now = context.now()
    exp = _time(claims["exp"])
    if verify_exp and exp <= now:
        raise jwt.ExpiredSignatureError("the token has expired")
    for name in ("iat", "nbf"):
        if name in claims and _time(claims[name]) > now:
            raise jwt.ImmatureSignatureError("the token is not yet valid")
    return claims


def _time(value: object) -> int:
    """A NumericDate claim of ours: an integer, or ``jwt.InvalidTokenError``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise jwt.InvalidTokenError("a time claim is not an integer")
    return value


async def _live_grant(context: ServerContext, stores: Stores, grant_id: str) -> Grant | None:
    """The grant, unless it is revoked or its user is gone or disabled (a disabled user's
    tokens are all inactive, as at the token endpoint)."""
    return await live_grant(context.accounts, stores, grant_id)


async def find_active(context: ServerContext, token: str, stores: Stores) -> TokenInfo | None:
    """The token's details if it is active, else ``None``."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = context.now()
    if token.startswith(REFRESH_TOKEN_PREFIX):
        rt = await stores.refresh_tokens.get(digest(token, context.pepper))
        if rt is None or rt.rotated_at is not None or rt.expires_at <= now:
            return None
        grant = await _live_grant(context, stores, rt.grant_id)
        if grant is None:
            return None
        return TokenInfo(
            "refresh_token",
            rt.client_id,
            grant.user_id,
            grant.scopes,
            grant.audience,
            rt.issued_at,
            rt.expires_at,
            None,
            grant.id,
        )
    if token.startswith(ACCESS_TOKEN_PREFIX):
        record = await stores.access_tokens.get_by_digest(digest(token, context.pepper))
    else:
        try:
            claims = verify_own_jwt(context, token, verify_exp=True)
        except jwt.PyJWTError:
            return None
        if await stores.access_tokens.is_denied(claims["jti"]):
            return None
        record = await stores.access_tokens.get(claims["jti"])
        if record is None:
            return TokenInfo(
                "access_token",
                claims["client_id"],
                claims["sub"],
                tuple(str(claims.get("scope", "")).split()),
                claims["aud"],
                claims["iat"],
                claims["exp"],
                claims["jti"],
                None,
            )
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return None
    if record.grant_id is not None and await _live_grant(context, stores, record.grant_id) is None:
        return None
    return TokenInfo(
        "access_token",
        record.client_id,
        record.subject,
        record.scopes,
        record.audience,
        record.issued_at,
        record.expires_at,
        record.jti,
        record.grant_id,
    )
