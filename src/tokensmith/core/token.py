"""``POST /token`` (RFC 6749 §3.2, §5): an ordered list of named steps.

1. ``parse``: the typed ``TokenRequest`` (``grant_type`` is required).
2. ``check_grant_type``: a refused grant (``REFUSED_GRANTS``, OAuth 2.1 §10.1-10.2) or one no
   handler serves is ``unsupported_grant_type``, before any credential is looked at.
3. ``authenticate_client``: RFC 6749 §2.3, counted by the request's rate limit.
4. ``check_client_grant``: the client must be registered for the grant (``unauthorized_client``).
5. ``find_grant``: the grant's handler, from the ``GrantRegistry``.
6. ``run_grant``: the handler, shown only the parameters it declares.
7. ``audit``: the handler's audit event.

The endpoint knows no grant by name: a new grant plugs in by being registered. The
client-credentials JWT path through these steps makes no database round-trip when the client
is cached.

Steps that wait on nothing (parse, the checks, the lookup, the audit event) are plain methods and
the loop awaits only the steps that return an awaitable (``authenticate_client``, ``run_grant``):
an ``async`` step costs a coroutine per request for nothing, and this is the hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tokensmith.core.audit import AuditEvent
from tokensmith.core.authentication import ClientAuthenticator
from tokensmith.core.client_auth import ClientRateLimit
from tokensmith.core.context import ServerContext
from tokensmith.core.dynamic_registration import note_use
from tokensmith.core.errors import UnauthorizedClient, UnsupportedGrantType
from tokensmith.core.grants import GrantHandler, GrantRegistry, TokenRequest
from tokensmith.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.core.grants.client_credentials import ClientCredentialsGrant
from tokensmith.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.core.issuance import TokenIssuer
from tokensmith.core.models import REFUSED_GRANTS, Client, TokenResponse
from tokensmith.core.ports import Stores

__all__ = [
    "STEPS",
    "GrantRegistry",
    "TokenEndpoint",
    "TokenExchange",
    "TokenRequest",
    "default_grants",
]


def default_grants() -> GrantRegistry:
    """The grants tokensmith serves: authorization code, client credentials, refresh token."""
    return GrantRegistry([AuthorizationCodeGrant(), ClientCredentialsGrant(), RefreshTokenGrant()])


@dataclass(slots=True, eq=False)
class TokenExchange:
    """One token request on its way through the steps: what it brought and what each step
    found."""

    params: dict[str, str] = field(repr=False)
    authorization: str | None = field(repr=False)
    stores: Stores = field(repr=False)
    limit: ClientRateLimit | None = field(repr=False)
    request: TokenRequest | None = None
    client: Client | None = None
    handler: GrantHandler | None = None
    response: TokenResponse | None = None

    def parsed(self) -> TokenRequest:
        assert self.request is not None, "the parse step runs first"
        return self.request

    def authenticated(self) -> Client:
        assert self.client is not None, "the authenticate_client step runs first"
        return self.client


Step = Callable[[TokenExchange], Awaitable[None] | None]

STEPS = (
    "parse",
    "check_grant_type",
    "authenticate_client",
    "check_client_grant",
    "find_grant",
    "run_grant",
    "audit",
)


class TokenEndpoint:
    def __init__(
        self,
        *,
        context: ServerContext,
        issuer: TokenIssuer,
        authenticator: ClientAuthenticator,
        grants: GrantRegistry,
    ) -> None:
        self.context = context
        self.issuer = issuer
        self.authenticator = authenticator
        self.grants = grants
        self.steps: tuple[tuple[str, Step], ...] = tuple(
            (name, getattr(self, name)) for name in STEPS
        )

    async def handle(
        self,
        params: dict[str, str],
        authorization: str | None,
        stores: Stores,
        *,
        limit: ClientRateLimit | None,
    ) -> TokenResponse:
        exchange = TokenExchange(params, authorization, stores, limit)
        for _name, step in self.steps:
            pending = step(exchange)
            if pending is not None:
                await pending
        assert exchange.response is not None, "the run_grant step answers"
        return exchange.response

    def parse(self, exchange: TokenExchange) -> None:
        exchange.request = TokenRequest.parse(exchange.params, exchange.authorization)

    # The steps below read ``exchange.request`` / ``.client`` / ``.handler`` directly, with an
    # ``assert`` where the accessors would cost a call each on the hot path.

    def check_grant_type(self, exchange: TokenExchange) -> None:
        assert exchange.request is not None, "the parse step runs first"
        grant_type = exchange.request.grant_type
        if grant_type in REFUSED_GRANTS:
            raise UnsupportedGrantType(f"the {grant_type} grant is not supported (OAuth 2.1)")
        if grant_type not in self.grants:
            raise UnsupportedGrantType("unsupported grant_type")

    async def authenticate_client(self, exchange: TokenExchange) -> None:
        exchange.client = await self.authenticator.authenticate(
            exchange.params, exchange.authorization, exchange.stores, limit=exchange.limit
        )
        noted = note_use(exchange.client, exchange.stores, self.context.now())
        if noted is not None:
            await noted

    def check_client_grant(self, exchange: TokenExchange) -> None:
        request, client = exchange.request, exchange.client
        assert request is not None, "the parse step runs first"
        assert client is not None, "the authenticate_client step runs first"
        grant_type = request.grant_type
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use the {grant_type} grant")

    def find_grant(self, exchange: TokenExchange) -> None:
        assert exchange.request is not None, "the parse step runs first"
        exchange.handler = self.grants.get(exchange.request.grant_type)
        if exchange.handler is None:  # unregistered meanwhile
            raise UnsupportedGrantType("unsupported grant_type")

    async def run_grant(self, exchange: TokenExchange) -> None:
        handler, request, client = exchange.handler, exchange.request, exchange.client
        assert handler is not None, "the find_grant step runs first"
        assert request is not None, "the parse step runs first"
        assert client is not None, "the authenticate_client step runs first"
        exchange.response = await handler.handle(
            request.only(handler.parameters),
            client,
            context=self.context,
            issuer=self.issuer,
            stores=exchange.stores,
        )

    def audit(self, exchange: TokenExchange) -> None:
        handler, client = exchange.handler, exchange.client
        assert handler is not None, "the find_grant step runs first"
        assert client is not None, "the authenticate_client step runs first"
        self.context.emit(
            AuditEvent(
                handler.audit_event,
                self.context.now(),
                client_id=client.client_id,
                detail={"grant_type": handler.grant_type},
            )
        )
