"""``POST /revoke`` (RFC 7009): the client authenticates and names a token; the answer is 200
whether or not the token was known (§2.2). ``token_type_hint`` is only a hint (§2.1), but an
unknown hint is ``unsupported_token_type`` (§2.2.1).

A refresh token takes its whole grant with it (the access tokens too); an access token JWT
joins the deny-list until it expires. Unknown tokens and tokens of other clients are ignored.
"""

from __future__ import annotations

import jwt

from tokensmith.core import audit
from tokensmith.core.audit import AuditEvent
from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.client_auth import ClientRateLimit
from tokensmith.core.context import ServerContext
from tokensmith.core.errors import InvalidRequest, UnsupportedTokenType
from tokensmith.core.models import Client
from tokensmith.core.ports import Stores
from tokensmith.core.secrets import ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, digest
from tokensmith.core.token_status import MAX_TOKEN_LENGTH, verify_own_jwt

HINTS = frozenset({"access_token", "refresh_token"})


class RevocationEndpoint:
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
    ) -> None:
        """Check the request (RFC 7009 §2.1), authenticate its client, revoke."""
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in HINTS:
            raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
        client = await self.authenticator.authenticate(params, authorization, stores, limit=limit)
        await self.revoke(client, token, stores)

    async def revoke(self, client: Client, token: str, stores: Stores) -> None:
        """RFC 7009 §2.1: revoke a token of this client. A refresh token takes its whole grant
        with it (the access tokens too); an access token JWT joins the deny-list until it
        expires. Unknown tokens and tokens of other clients are ignored (the answer is 200
        either way)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return
        ctx = self.context
        now = ctx.now()
        if token.startswith(REFRESH_TOKEN_PREFIX):
            rt = await stores.refresh_tokens.get(digest(token, ctx.pepper))
            if rt is not None and rt.client_id == client.client_id:
                await stores.grants.revoke(rt.grant_id, now)
                self._revoked(client, now, "refresh_token")
            return
        if token.startswith(ACCESS_TOKEN_PREFIX):
            record = await stores.access_tokens.get_by_digest(digest(token, ctx.pepper))
            if record is not None and record.client_id == client.client_id:
                await stores.access_tokens.revoke(record.jti, now)
                self._revoked(client, now, "access_token")
            return
        try:
            claims = verify_own_jwt(ctx, token, verify_exp=False)
        except jwt.PyJWTError:
            return
        if claims.get("client_id") != client.client_id or claims["exp"] <= now:
            return
        await stores.access_tokens.deny_jti(claims["jti"], claims["exp"])
        await stores.access_tokens.revoke(claims["jti"], now)
        self._revoked(client, now, "access_token")

    def _revoked(self, client: Client, now: int, kind: str) -> None:
        self.context.emit(
            AuditEvent(audit.TOKEN_REVOKED, now, client_id=client.client_id, detail={"kind": kind})
        )
