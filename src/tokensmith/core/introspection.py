"""``POST /introspect`` (RFC 7662): for authenticated confidential clients.

Details of an active token go to its own client, and of access tokens to clients allowed to
introspect (``can_introspect``); anything else, and anything not active, is exactly
``{"active": false}`` (§2.2: no reason given).
"""

from __future__ import annotations

from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.client_auth import ClientRateLimit
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import InvalidClient, InvalidRequest
from tokensmith.core.models import Client
from tokensmith.core.ports import Stores
from tokensmith.core.token_status import INACTIVE, TokenInfo, find_active


def may_introspect(caller: Client, info: TokenInfo) -> bool:
    """Whose business a token is (RFC 7662 §2.1, §4): its own client's always. Another client's
    only for an access token and only with ``can_introspect`` (a resource server checking the
    tokens it receives); a refresh token is only ever presented to us by the client it was issued
    to (RFC 6749 §6), so no one else has a reason to ask about it, and an "active" answer would
    invite using it as an access token."""
    if info.client_id == caller.client_id:
        return True
    return info.kind == "access_token" and caller.can_introspect


class IntrospectionEndpoint:
    def __init__(self, *, context: ServerContext, authenticator: ClientAuthenticator) -> None:
        self.context = context
        self.authenticator = authenticator

    async def handle(
        self,
        params: dict[str, str],
        authorization: str | None,
        stores: Stores,
        *,
        limit: ClientRateLimit | None,
    ) -> dict[str, object]:
        """The RFC 7662 §2.2 answer to an introspection request (§2.1)."""
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        client = await self.authenticator.authenticate(params, authorization, stores, limit=limit)
        if not client.is_confidential:
            raise InvalidClient("public clients cannot introspect tokens")
        return await self.introspect(client, token, stores)

    async def introspect(self, caller: Client, token: str, stores: Stores) -> dict[str, object]:
        """RFC 7662: details for the token's own client; of access tokens, for clients allowed
        to introspect; ``{"active": false}`` for anything else (§2.2: no reason given)."""
        info = await find_active(self.context, token, stores)
        if info is None or not may_introspect(caller, info):
            return INACTIVE
        return info.introspection(self.context.issuer)
