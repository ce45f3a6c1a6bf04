"""The UserInfo endpoint (OpenID Connect Core §5.3) and its response (§5.4): claims by scope.

Only for active access tokens that carry ``openid`` (otherwise ``invalid_token`` or
``insufficient_scope``, RFC 6750 §3.1), of a user who still exists and is not disabled.
``sub`` always; ``profile``: name, preferred_username, updated_at; ``email``: email,
email_verified.
"""

from __future__ import annotations

from tokensmith.core.context import ServerContext
from tokensmith.core.errors import InsufficientScope, InvalidToken
from tokensmith.core.models import User
from tokensmith.core.ports import Stores
from tokensmith.core.token_status import find_active


def claims_for(user: User, scopes: tuple[str, ...]) -> dict[str, object]:
    claims: dict[str, object] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        claims["updated_at"] = user.updated_at
        if user.name:
            claims["name"] = user.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


class UserInfoEndpoint:
    def __init__(self, *, context: ServerContext) -> None:
        self.context = context

    async def handle(self, token: str, stores: Stores) -> dict[str, object]:
        """The claims of the user an access token (RFC 6750 bearer) was issued for."""
        info = await find_active(self.context, token, stores)
        if info is None or info.kind != "access_token":
            raise InvalidToken("the access token is invalid, expired or revoked")
        if "openid" not in info.scopes:
            raise InsufficientScope("the access token does not carry the openid scope")
        user = await stores.users.get(info.subject)
        if user is None or user.disabled:
            raise InvalidToken("the user of this token no longer exists or is disabled")
        return claims_for(user, info.scopes)
