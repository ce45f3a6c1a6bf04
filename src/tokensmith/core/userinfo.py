"""The UserInfo endpoint (OpenID Connect Core §5.3) and its response (§5.4): claims by scope.

Only for active access tokens that carry ``openid`` (otherwise ``invalid_token`` or
``insufficient_scope``, RFC 6750 §3.1), of a user who still exists and is not disabled.
``sub`` always; ``profile``: name, preferred_username, updated_at; ``email``: email,
email_verified.
"""

from __future__ import annotations

from tokensmith.core.accounts import claims_for
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import InsufficientScope, InvalidToken
from tokensmith.core.ports import Stores
from tokensmith.core.token_status import find_active

__all__ = ["UserInfoEndpoint", "claims_for"]


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
        accounts = self.context.accounts
        user = await accounts.get(stores, info.subject)
        if user is None or user.disabled:
            raise InvalidToken("the user of this token no longer exists or is disabled")
        return accounts.claims(user, info.scopes)
