"""Client authentication at the token, revocation and introspection endpoints (RFC 6749
§2.3, §3.2.1; RFC 7523 §3 for ``private_key_jwt``), counted by the request's rate limit.

The credentials are read by ``core.client_auth``; the client is looked up through the
context's cache. A client assertion is single-use: its ``jti`` is reserved until it expires.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar

from tokensmith.core import client_assertion
from tokensmith.core.client_auth import (
    ClientCredentials,
    ClientRateLimit,
    check_secret,
    extract_credentials,
)
from tokensmith.core.context import ServerContext, Transaction
from tokensmith.core.errors import InvalidClient, InvalidRequest, OAuthError
from tokensmith.core.models import Client
from tokensmith.core.ports import Stores

_Inputs = tuple[str | None, str | None, str | None, str | None, str | None]
_LAST: ContextVar[tuple[_Inputs, ClientCredentials] | None] = ContextVar(
    "tokensmith_client_credentials", default=None
)


def credentials(params: dict[str, str], authorization: str | None) -> ClientCredentials:
    """``extract_credentials``, once per request: a request reads its credentials before its
    transaction (:meth:`ClientAuthenticator.documents_resolved`) and again to authenticate.
    The last result is kept in the task's context (a request is served by one task, which ends
    with it), keyed by every input ``extract_credentials`` reads, so a kept result is only ever
    the one it would compute again. The inputs are compared by identity, not by value: both reads
    of a request pass the very same objects, and no secret is ever compared with ``==`` (whose
    time depends on the content). An equal but distinct input is read again. Refusals are not
    kept (they raise)."""
    inputs: _Inputs = (
        authorization,
        params.get("client_id"),
        params.get("client_secret"),
        params.get("client_assertion"),
        params.get("client_assertion_type"),
    )
    last = _LAST.get()
    if last is not None:
        kept = last[0]
        if (
            kept[0] is inputs[0]
            and kept[1] is inputs[1]
            and kept[2] is inputs[2]
            and kept[3] is inputs[3]
            and kept[4] is inputs[4]
        ):
            return last[1]
    creds = extract_credentials(params, authorization)
    _LAST.set((inputs, creds))
    return creds


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
            creds = credentials(params, authorization)
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
        creds = credentials(params, authorization)
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
        client_id = creds.client_id
        client = None
        if client_id:
            client = ctx.known_client(client_id) or await ctx.get_client(client_id, stores)
        return check_secret(client, creds, ctx.pepper)
