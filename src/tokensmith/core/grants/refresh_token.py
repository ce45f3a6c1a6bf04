"""The refresh token grant (RFC 6749 §6; OAuth 2.1 §4.3; RFC 9700 §4.14.2).

- Every use rotates the token: the presented one is atomically marked rotated and a new one is
  issued. Presenting a rotated token again is reuse: the whole grant (every refresh token of the
  family and the access tokens issued from it) is revoked, committed although the request fails.
- Bound to its client; expired by an idle and an absolute lifetime; scope may only narrow (the new
  refresh token keeps the grant's scope, RFC 6749 §6).
- There is no reuse grace window: two concurrent uses of one token count as reuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokensmith.core import audit
from tokensmith.core import scopes as scope_rules
from tokensmith.core.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from tokensmith.core.models import GRANT_REFRESH_TOKEN, Client, TokenResponse
from tokensmith.core.secrets import digest

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer
    from tokensmith.storage.interfaces import Stores

INVALID = "the refresh token is invalid, expired or revoked"


class RefreshTokenGrant:
    grant_type = GRANT_REFRESH_TOKEN

    async def handle(
        self,
        server: AuthorizationServer,
        client: Client,
        params: dict[str, str],
        stores: Stores,
    ) -> TokenResponse:
        value = params.get("refresh_token")
        if value is None:
            raise InvalidRequest("refresh_token is required")
        requested = scope_rules.parse_scope(params.get("scope"))
        now = server.now()
        token_digest = digest(value, server.pepper)
        token = await stores.refresh_tokens.rotate(token_digest, now)
        if token is None:
            known = await stores.refresh_tokens.get(token_digest)
            if known is not None and known.client_id == client.client_id:
                await server.revoke_family(
                    stores, known.grant_id, event=audit.REFRESH_REUSED, client_id=client.client_id
                )
                raise InvalidGrant(INVALID, detail=f"refresh token reuse: grant {known.grant_id}")
            raise InvalidGrant(INVALID, detail="unknown refresh token")
        if token.client_id != client.client_id:
            await server.revoke_family(
                stores, token.grant_id, event=audit.REFRESH_REUSED, client_id=client.client_id
            )
            raise InvalidGrant(INVALID, detail="refresh token of another client: grant revoked")
        grant = await stores.grants.get(token.grant_id)
        user = await stores.users.get(grant.user_id) if grant else None
        if grant is None or grant.revoked_at is not None or user is None or user.disabled:
            await stores.commit()
            raise InvalidGrant(INVALID, detail="grant revoked or user disabled")
        if token.expires_at <= now or token.absolute_expires_at <= now:
            await stores.commit()
            raise InvalidGrant(INVALID, detail="refresh token expired")
        if requested and not set(requested) <= set(grant.scopes):
            raise InvalidScope("a refresh may only narrow the scope of the grant")
        if params.get("resource", grant.audience) != grant.audience:
            raise InvalidTarget("a refresh token is bound to the resource of its grant")
        return await server.issue_for_grant(
            client,
            grant,
            stores,
            scopes=requested or grant.scopes,
            with_refresh_token=True,
            absolute_expires_at=token.absolute_expires_at,
        )
