"""The refresh token grant (RFC 6749 §6; OAuth 2.1 §4.3; RFC 9700 §4.14.2).

- Every use rotates the token: the presented one is atomically marked rotated and a new one is
  issued. Presenting a rotated token again is reuse: the whole grant (every refresh token of the
  family and the access tokens issued from it) is revoked, committed although the request fails.
- Bound to its client (RFC 6749 §6, RFC 9700 §4.14.2): presented by any other client it is
  ``invalid_grant`` and nothing happens to it: it is not rotated and its grant is not revoked (as
  for codes, OAuth 2.1 §4.1.3: whoever merely holds a token must not be able to revoke the real
  client's grant). Only a reuse by its own client revokes.
- Expired by an idle and an absolute lifetime; bound to its grant's resource (a different
  ``resource`` is ``invalid_target``, RFC 8707 §2.2, as is an API the client may no longer use);
  scope may only narrow (the new refresh token keeps the grant's scope, RFC 6749 §6). A narrowed
  scope without ``openid`` gets no ID token.
- There is no reuse grace window: two concurrent uses of one token count as reuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokensmith.core import audit
from tokensmith.core import scopes as scope_rules
from tokensmith.core.accounts import rotate_refresh_token
from tokensmith.core.authorize import check_grant_scopes
from tokensmith.core.errors import InvalidGrant, InvalidRequest, InvalidScope
from tokensmith.core.models import GRANT_REFRESH_TOKEN, Client, TokenResponse
from tokensmith.core.secrets import digest

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.grants import TokenRequest
    from tokensmith.core.issuance import TokenIssuer
    from tokensmith.core.ports import Stores

INVALID = "the refresh token is invalid, expired or revoked"


class RefreshTokenGrant:
    grant_type = GRANT_REFRESH_TOKEN
    parameters = frozenset({"refresh_token", "scope", "resource"})
    audit_event = audit.TOKEN_REFRESHED

    async def handle(
        self,
        request: TokenRequest,
        client: Client,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        stores: Stores,
    ) -> TokenResponse:
        value = request.get("refresh_token")
        if value is None:
            raise InvalidRequest("refresh_token is required")
        requested = scope_rules.parse_scope(request.get("scope"))
        now = context.now()
        token_digest = digest(value, context.pepper)
        # One statement in the common case (PostgreSQL, tokensmith's own users): the rotation
        # itself, bound to the client (another client's token is left untouched), with the read
        # of its live grant. Only when it rotates nothing is the token read, to tell an unknown
        # token, another client's and a reuse apart.
        rotated = await rotate_refresh_token(
            context.accounts, stores, token_digest, now, client_id=client.client_id
        )
        if rotated is None:
            known = await stores.refresh_tokens.get(token_digest)
            if known is None:
                raise InvalidGrant(INVALID, detail="unknown refresh token")
            if known.client_id != client.client_id:
                # nothing was written: another client learns nothing and changes nothing
                raise InvalidGrant(INVALID, detail="refresh token of another client")
            await issuer.revoke_family(
                stores, known.grant_id, event=audit.REFRESH_REUSED, client_id=client.client_id
            )
            raise InvalidGrant(INVALID, detail=f"refresh token reuse: grant {known.grant_id}")
        token, grant = rotated
        if grant is None:
            await stores.commit()
            raise InvalidGrant(INVALID, detail="grant revoked or user disabled")
        if token.expires_at <= now or token.absolute_expires_at <= now:
            await stores.commit()
            raise InvalidGrant(INVALID, detail="refresh token expired")
        # the errors below roll the rotation back: the token stays usable
        await context.check_token_audience(client, grant.audience, request.get("resource"), stores)
        await check_grant_scopes(context, client, grant.audience, grant.scopes, stores)
        if requested and not set(requested) <= set(grant.scopes):
            raise InvalidScope("a refresh may only narrow the scope of the grant")
        return await issuer.for_grant(
            client,
            grant,
            stores,
            scopes=requested or grant.scopes,
            with_refresh_token=True,
            absolute_expires_at=token.absolute_expires_at,
        )
