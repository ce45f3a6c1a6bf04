"""The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.

No user, so no refresh token (§4.4.3) and no OpenID scopes; ``sub`` is the client id. The
audience is the ``resource`` (RFC 8707 §2), which must be one of the client's APIs
(``invalid_target`` otherwise), or the client's default API. Without ``scope`` the client gets
its allowed scopes that the API defines; when that is none although the API defines scopes, the
request is ``invalid_scope``, never a token with an empty scope (only an API that defines no
scopes gives one). The fast path: no database write for JWT access tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokensmith.core import audit
from tokensmith.core import scopes as scope_rules
from tokensmith.core.authorize import allowed_scopes, resolve_audience
from tokensmith.core.errors import InvalidScope, InvalidTarget, UnauthorizedClient
from tokensmith.core.models import GRANT_CLIENT_CREDENTIALS, Client, TokenResponse

if TYPE_CHECKING:
    from tokensmith.core.context import ServerContext
    from tokensmith.core.grants import TokenRequest
    from tokensmith.core.issuance import TokenIssuer
    from tokensmith.core.ports import Stores


class ClientCredentialsGrant:
    grant_type = GRANT_CLIENT_CREDENTIALS
    parameters = frozenset({"scope", "resource"})
    audit_event = audit.TOKEN_ISSUED

    async def handle(
        self,
        request: TokenRequest,
        client: Client,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        stores: Stores,
    ) -> TokenResponse:
        if not client.is_confidential:
            raise UnauthorizedClient("public clients cannot use client credentials")
        requested = scope_rules.parse_scope(request.get("scope"))
        resource = request.get("resource")
        apis = context.known_apis_for(resource, client)
        if apis is None:
            apis = await context.apis_for(resource, client, stores)
        audience, api = resolve_audience(resource, client, apis)
        if api is None:
            raise InvalidTarget("client credentials need a resource or a default API")
        oidc = [s for s in requested if s in scope_rules.OIDC_SCOPES]
        if oidc:
            raise InvalidScope(f"user scopes are not available to a client: {' '.join(oidc)}")
        allowed = allowed_scopes(client, api)
        if not requested:
            requested = tuple(s for s in allowed if s in api.scopes)
            if not requested and api.scopes:
                raise InvalidScope(f"this client is allowed none of the scopes of {audience}")
        scope_rules.check_allowed(requested, allowed)
        undefined = [s for s in requested if s not in api.scopes]
        if undefined:
            raise InvalidScope(f"scope not defined by {audience}: {' '.join(undefined)}")
        token, ttl, record = issuer.new_access_token(
            client, subject=client.client_id, scopes=requested, audience=audience
        )
        if record is not None:  # an opaque token (a JWT of this grant is not recorded)
            # the request's only write: on PostgreSQL one statement that commits by itself
            await stores.grants.issue(None, access_token=record, refresh_token=None, last=True)
        return TokenResponse(access_token=token, expires_in=ttl, scopes=requested)
