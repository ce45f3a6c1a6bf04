"""``ServerContext``: the little every endpoint and grant needs of the server, and nothing more.

The policy, the clock, the signing keys, the pepper, the audit sink, and registered clients and
APIs looked up through short-lived caches (``core.cache``). Grants and endpoints receive this
context (and the ``TokenIssuer`` built on it), never the ``AuthorizationServer``.

Not frozen on purpose: the runtime swaps ``keys`` when signing keys are rotated by another
process, and tests or benchmarks may replace the audit sink. Everything else is set once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensmith.core.accounts import Accounts, StoreAccounts
from tokensmith.core.audit import AuditEvent, AuditSink, discard
from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import Clock
from tokensmith.core.errors import InvalidTarget
from tokensmith.core.keys import KeyRing
from tokensmith.core.models import Api, Client
from tokensmith.core.policy import ServerPolicy
from tokensmith.core.ports import Stores


@dataclass(eq=False, kw_only=True)
class ServerContext:
    policy: ServerPolicy
    clock: Clock
    keys: KeyRing
    pepper: bytes = field(repr=False)
    audit: AuditSink = discard
    accounts: Accounts = field(default_factory=StoreAccounts)
    """The users signed in (``core.accounts``): tokensmith's own table unless the application
    plugged in its own."""
    client_cache: TTLCache[Client] = field(init=False, repr=False)
    api_cache: TTLCache[Api] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ttl = self.policy.client_cache_ttl
        self.client_cache = TTLCache(ttl=ttl, clock=self.clock)
        self.api_cache = TTLCache(ttl=ttl, clock=self.clock)

    @property
    def issuer(self) -> str:
        return self.policy.issuer

    def now(self) -> int:
        return int(self.clock())

    def emit(self, event: AuditEvent) -> None:
        """Record an audit event (``core.audit``); never blocks."""
        self.audit(event)

    async def get_client(self, client_id: str, stores: Stores) -> Client | None:
        """A registered client, through the short-lived cache."""
        return await self.client_cache.get(client_id, lambda: stores.clients.get(client_id))

    async def get_api(self, identifier: str, stores: Stores) -> Api | None:
        """A registered API, through the short-lived cache."""
        return await self.api_cache.get(identifier, lambda: stores.apis.get(identifier))

    async def apis_for(
        self, resource: str | None, client: Client, stores: Stores
    ) -> dict[str, Api]:
        """The registered API a request names (``resource``, or the client's default API), if
        the client may use it: ``authorize.resolve_audience`` then decides, and refuses a
        resource outside the client's APIs with ``invalid_target`` (RFC 8707 §2). An API the
        client may not use is not even looked up."""
        identifier = resource or client.default_api
        if identifier is None or not client.may_use(identifier):
            return {}
        api = await self.get_api(identifier, stores)
        return {api.identifier: api} if api else {}

    async def check_token_audience(
        self, client: Client, audience: str, resource: str | None, stores: Stores
    ) -> None:
        """At the token endpoint, for tokens of an existing grant or code: a ``resource`` sent
        must be the grant's audience, and that audience must still be one of the client's APIs
        and registered; otherwise ``invalid_target`` (RFC 8707 §2.2)."""
        if resource is not None and resource != audience:
            raise InvalidTarget("the resource is not the one this grant was issued for")
        if audience == "":
            return
        if not client.may_use(audience) or await self.get_api(audience, stores) is None:
            raise InvalidTarget("this client may no longer request tokens for this resource")
