"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).

- The code is consumed atomically, so of concurrent redemptions exactly one wins.
- A second redemption fails with ``invalid_grant`` and revokes everything issued from the code
  (RFC 6749 §4.1.2, RFC 9700 §4.2.4); that revocation is committed although the request fails.
- The code is bound to the client, the redirect URI and the PKCE challenge; any failed check burns
  it (the consumption is committed), so a wrong verifier cannot be retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokensmith.core import audit, pkce
from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.models import GRANT_AUTHORIZATION_CODE, Client, Grant, TokenResponse
from tokensmith.core.secrets import digest

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer
    from tokensmith.storage.interfaces import Stores

INVALID_CODE = "the authorization code is invalid, expired or already used"


class AuthorizationCodeGrant:
    grant_type = GRANT_AUTHORIZATION_CODE

    async def handle(
        self,
        server: AuthorizationServer,
        client: Client,
        params: dict[str, str],
        stores: Stores,
    ) -> TokenResponse:
        value = params.get("code")
        if value is None:
            raise InvalidRequest("code is required")
        now = server.now()
        code_digest = digest(value, server.pepper)
        code = await stores.codes.consume(code_digest, now)
        if code is None:
            used = await stores.codes.get(code_digest)
            if used is not None:
                await server.revoke_family(
                    stores,
                    used.grant_id,
                    event=audit.CODE_REPLAYED,
                    client_id=client.client_id,
                    user_id=used.user_id,
                )
                raise InvalidGrant(
                    INVALID_CODE, detail=f"code replay, grant {used.grant_id} revoked"
                )
            raise InvalidGrant(INVALID_CODE, detail="unknown code")
        try:
            if code.client_id != client.client_id:
                raise InvalidGrant(INVALID_CODE, detail="code issued to another client")
            if code.expires_at <= now:
                raise InvalidGrant(INVALID_CODE, detail="code expired")
            sent_redirect = params.get("redirect_uri")
            redirect_checked = code.redirect_uri_sent or sent_redirect is not None
            if redirect_checked and sent_redirect != code.redirect_uri:
                raise InvalidGrant("redirect_uri does not match the authorization request")
            pkce.check_verifier(params.get("code_verifier"), code.code_challenge)
        except InvalidGrant:
            await stores.commit()  # the code stays burnt
            raise
        grant = Grant(
            id=code.grant_id,
            client_id=client.client_id,
            user_id=code.user_id,
            scopes=code.scopes,
            audience=code.audience,
            auth_time=code.auth_time,
            created_at=now,
            session_id=code.session_id,
        )
        await stores.grants.create(grant)
        return await server.issue_for_grant(client, grant, stores, nonce=code.nonce)
