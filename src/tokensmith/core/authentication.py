"""Client authentication at the token, revocation and introspection endpoints (RFC 6749
§2.3, §3.2.1; RFC 7523 §3 for ``private_key_jwt``), counted by the request's rate limit.

The credentials are read by ``core.client_auth``; the client is looked up through the
context's cache. A client assertion is single-use: its ``jti`` is reserved until it expires.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from tokensmith.core import client_assertion
from tokensmith.core.client_auth import ClientRateLimit, check_secret, extract_credentials
from tokensmith.core.context import ServerContext, Transaction
from tokensmith.core.errors import InvalidClient, InvalidRequest, OAuthError
from tokensmith.core.models import Client
from tokensmith.core.ports import Stores


class ClientAuthenticator:
    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def authenticate(
        self,
        params: dict[str, str],
        authorization: str | None,
        stores: Stores,
        *,
        limit: ClientRateLimit | None,
    ) -> Client:
        """Authenticate the client of a token, revocation or introspection request, then count
        the request with ``limit``: against the authenticated client, or, when authentication
        fails, against the caller (a failure past the limit is answered ``SlowDown``). ``limit``
        has no default so that no endpoint forgets it; ``None`` means no limit applies."""
        if limit is None:
            return await self.verify(params, authorization, stores)
        try:
            client = await self.verify(params, authorization, stores)
        except (InvalidClient, InvalidRequest):
            await limit.failed()
            raise
        await limit.authenticated(client)
        return client

    def documents_resolved(
        self, params: dict[str, str], authorization: str | None, transaction: Transaction
    ) -> AbstractAsyncContextManager[None]:
        """Before the request's transaction: the client a metadata document describes, when
        the client the request claims is a URL (``ServerContext.documents_resolved``), so that
        its fetch holds no database connection. Credentials that cannot be read are left to
        ``verify`` (inside the transaction) to refuse."""
        try:
            creds = extract_credentials(params, authorization)
            client_id = creds.client_id
            if creds.assertion is not None and not client_id:
                client_id = client_assertion.unverified_subject(creds.assertion)
        except OAuthError:
            client_id = None
        return self.context.documents_resolved(client_id, transaction)

    async def verify(
        self, params: dict[str, str], authorization: str | None, stores: Stores
    ) -> Client:
        ctx = self.context
        creds = extract_credentials(params, authorization)
        if creds.assertion is not None:
            client_id = creds.client_id or client_assertion.unverified_subject(creds.assertion)
            client = await ctx.get_client(client_id, stores)
            if client is None or client.token_endpoint_auth_method != "private_key_jwt":
                raise InvalidClient("client authentication failed")
            verified = client_assertion.verify(
                creds.assertion,
                client,
                audiences=(ctx.policy.endpoints.token, ctx.issuer),
                now=ctx.now(),
            )
            if not await stores.assertion_jtis.use(
                client.client_id, verified.jti, verified.expires_at
            ):
                raise InvalidClient("the client assertion was used before (jti replay)")
            return client
        client = await ctx.get_client(creds.client_id, stores) if creds.client_id else None
        return check_secret(client, creds, ctx.pepper)
