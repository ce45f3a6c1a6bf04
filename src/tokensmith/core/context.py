"""``ServerContext``: the little every endpoint and grant needs of the server, and nothing more.

The policy, the clock, the signing keys, the pepper, the audit sink, and registered clients and
APIs looked up through short-lived caches (``core.cache``). Grants and endpoints receive this
context (and the ``TokenIssuer`` built on it), never the ``AuthorizationServer``.

Not frozen on purpose: the runtime swaps ``keys`` when signing keys are rotated by another
process, and tests or benchmarks may replace the audit sink. Everything else is set once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensmith.core.audit import AuditEvent, AuditSink, discard
from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import Clock
from tokensmith.core.errors import InvalidTarget
from tokensmith.core.keys import KeyRing
from tokensmith.core.metadata_document import (
    DocumentError,
    DocumentFetcher,
    check_client_id_url,
    client_from_document,
    domain_allowed,
    domain_of,
    looks_like_document_url,
)
from tokensmith.core.models import Api, Client
from tokensmith.core.policy import ServerPolicy
from tokensmith.core.ports import Stores

MAX_CACHED_DOCUMENTS = 10_000
"""Metadata-document clients kept in one process at most (oldest dropped first)."""
FAILURE_MEMORY = 10
"""Seconds a process refuses a metadata document URL again, without fetching, after it failed."""


@dataclass(eq=False, kw_only=True)
class ServerContext:
    policy: ServerPolicy
    clock: Clock
    keys: KeyRing
    pepper: bytes = field(repr=False)
    audit: AuditSink = discard
    documents: DocumentFetcher | None = None
    """Fetches Client ID Metadata Documents (the edge); ``None``: such clients are unknown."""
    client_cache: TTLCache[Client] = field(init=False, repr=False)
    document_clients: dict[str, tuple[Client, int]] = field(init=False, repr=False)
    document_failures: dict[str, int] = field(init=False, repr=False)
    api_cache: TTLCache[Api] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ttl = self.policy.client_cache_ttl
        self.client_cache = TTLCache(ttl=ttl, clock=self.clock)
        self.api_cache = TTLCache(ttl=ttl, clock=self.clock)
        self.document_clients = {}
        self.document_failures = {}

    @property
    def issuer(self) -> str:
        return self.policy.issuer

    def now(self) -> int:
        return int(self.clock())

    def emit(self, event: AuditEvent) -> None:
        """Record an audit event (``core.audit``); never blocks."""
        self.audit(event)

    async def get_client(self, client_id: str, stores: Stores) -> Client | None:
        """A registered client, through the short-lived cache; or, for a ``client_id`` that is a
        URL, the client its metadata document describes (``document_client``)."""
        if looks_like_document_url(client_id):
            try:
                return await self.document_client(client_id, stores)
            except DocumentError:
                return None
        return await self.client_cache.get(client_id, lambda: stores.clients.get(client_id))

    async def document_client(self, url: str, stores: Stores) -> Client:
        """The client described by the metadata document at ``url``; ``DocumentError`` when
        metadata documents are off, the URL or its domain is refused, or the document cannot be
        fetched or used.

        The document is kept as long as its HTTP caching allows (the fetcher bounds it): in this
        process (at most ``client_cache_ttl`` seconds, like registered clients), and for every
        process in ``stores.client_documents`` (the database, or Redis when configured), so a
        request's later steps on other processes do not fetch it again. A kept document is
        validated again when read."""
        policy = self.policy
        if not policy.client_metadata_documents or self.documents is None:
            raise DocumentError("client ID metadata documents are not accepted here")
        check_client_id_url(url, allow_loopback=policy.client_metadata_allow_loopback)
        if not domain_allowed(
            domain_of(url),
            allowed=policy.client_metadata_allowed_domains,
            blocked=policy.client_metadata_blocked_domains,
        ):
            raise DocumentError(f"the operator does not accept clients from {domain_of(url)}")
        now = int(self.clock())
        cached = self.document_clients.get(url)
        if cached is not None and cached[1] > now:
            return cached[0]
        body = await stores.client_documents.get(url, now)
        expires_at = now + int(policy.client_cache_ttl)
        if body is None:
            if self.document_failures.get(url, 0) > now:
                raise DocumentError("the document could not be used a moment ago; try later")
            try:
                fetched = await self.documents.fetch(url)
                client = client_from_document(url, fetched.body, now=now)
            except DocumentError:
                # remembered briefly: a URL that fails is not fetched again for every request
                if len(self.document_failures) >= MAX_CACHED_DOCUMENTS:
                    self.document_failures.clear()
                self.document_failures[url] = now + FAILURE_MEMORY
                raise
            if fetched.max_age > 0:
                await stores.client_documents.put(url, fetched.body, now + fetched.max_age)
            expires_at = now + min(fetched.max_age, int(policy.client_cache_ttl))
        else:
            client = client_from_document(url, body, now=now)
        if expires_at > now:
            if len(self.document_clients) >= MAX_CACHED_DOCUMENTS:
                self.document_clients = {
                    k: v for k, v in self.document_clients.items() if v[1] > now
                }
                if len(self.document_clients) >= MAX_CACHED_DOCUMENTS:
                    self.document_clients.pop(next(iter(self.document_clients)))
            self.document_clients[url] = (client, expires_at)
        return client

    async def get_api(self, identifier: str, stores: Stores) -> Api | None:
        """A registered API, through the short-lived cache."""
        return await self.api_cache.get(identifier, lambda: stores.apis.get(identifier))

    async def apis_for(
        self, resource: str | None, client: Client, stores: Stores
    ) -> dict[str, Api]:
        """The registered API a request names (``resource``, or the client's default API), if
        the client may use it: ``authorize.resolve_audience`` then decides, and refuses a
        resource outside the client's APIs with ``invalid_target`` (RFC 8707 §2). An API a
        static client may not use is not even looked up; for a dynamic client the API's
        ``dynamic_clients`` flag decides (``Client.may_use``)."""
        identifier = resource or client.default_api
        if identifier is None or not client.might_use(identifier):
            return {}
        api = await self.get_api(identifier, stores)
        return {api.identifier: api} if api is not None and client.may_use(api) else {}

    async def check_token_audience(
        self, client: Client, audience: str, resource: str | None, stores: Stores
    ) -> None:
        """At the token endpoint, for tokens of an existing grant or code: a ``resource`` sent
        must be the grant's audience, and that audience must still be registered and usable by
        the client (one of its APIs; for a dynamic client, still open to dynamic clients);
        otherwise ``invalid_target`` (RFC 8707 §2.2)."""
        if resource is not None and resource != audience:
            raise InvalidTarget("the resource is not the one this grant was issued for")
        if audience == "":
            if client.is_dynamic:  # never issued: dynamic clients always name an API
                raise InvalidTarget("this client must name the resource it wants a token for")
            return
        if not client.might_use(audience):
            raise InvalidTarget("this client may no longer request tokens for this resource")
        api = await self.get_api(audience, stores)
        if api is None or not client.may_use(api):
            raise InvalidTarget("this client may no longer request tokens for this resource")
