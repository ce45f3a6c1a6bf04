"""``ServerContext``: the little every endpoint and grant needs of the server, and nothing more.

The policy, the clock, the signing keys, the pepper, the audit sink, and registered clients and
APIs looked up through short-lived caches (``core.cache``). Grants and endpoints receive this
context (and the ``TokenIssuer`` built on it), never the ``AuthorizationServer``.

Not frozen on purpose: the runtime swaps ``keys`` when signing keys are rotated by another
process, and tests or benchmarks may replace the audit sink. Everything else is set once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from tokensmith.core.accounts import Accounts, StoreAccounts
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

_V = TypeVar("_V")

MAX_CACHED_DOCUMENTS = 10_000
"""Metadata-document clients kept in one process at most (oldest dropped first)."""
FAILURE_MEMORY = 10
"""Seconds a process refuses a metadata document URL again, without fetching, after it failed."""

Transaction = Callable[[], AbstractAsyncContextManager[Stores]]
"""Opens one short transaction (``Database.transaction``): the stores of that transaction."""


def _within(stores: Stores) -> Transaction:
    """The caller's open transaction as a ``Transaction``: every "new" one is ``stores``."""

    @asynccontextmanager
    async def given() -> AsyncIterator[Stores]:
        yield stores

    return given


_NOTHING_TO_RESOLVE: AbstractAsyncContextManager[None] = nullcontext()
"""``documents_resolved`` for a client id that is not a document URL (stateless, shared)."""
_RESOLVED: ContextVar[dict[str, Client | DocumentError] | None] = ContextVar(
    "tokensmith_resolved_documents", default=None
)
"""The metadata-document clients resolved for the current request before its transaction
(``ServerContext.documents_resolved``): the client, or why there is none."""


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
    documents: DocumentFetcher | None = None
    """Fetches Client ID Metadata Documents (the edge); ``None``: such clients are unknown."""
    reads: Callable[[], AbstractAsyncContextManager[Stores]] | None = None
    """Stores for a short read outside any request's transaction (the edge: ``Database.read``),
    for the client and API caches' reloads by a request that holds no connection yet: on a
    SQLite file a read-only connection, so that a token request whose cached client expired
    does not queue behind the writers on the one write connection, nor open its own
    transaction (a writer's, on SQLite) only to read it. ``None``: the request's stores."""
    client_cache: TTLCache[Client] = field(init=False, repr=False)
    document_clients: dict[str, tuple[Client, int]] = field(init=False, repr=False)
    document_failures: dict[str, int] = field(init=False, repr=False)
    document_flights: dict[str, asyncio.Future[Client | None]] = field(init=False, repr=False)
    """The resolutions of a document under way in this process, by URL: a request that needs
    the same document waits for that one (``_resolve_shared``) instead of fetching it again."""
    api_cache: TTLCache[Api] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ttl = self.policy.client_cache_ttl
        self.client_cache = TTLCache(ttl=ttl, clock=self.clock)
        self.api_cache = TTLCache(ttl=ttl, clock=self.clock)
        self.document_clients = {}
        self.document_failures = {}
        self.document_flights = {}

    @property
    def issuer(self) -> str:
        return self.policy.issuer

    def now(self) -> int:
        return int(self.clock())

    def emit(self, event: AuditEvent) -> None:
        """Record an audit event (``core.audit``); never blocks."""
        self.audit(event)

    def known_client(self, client_id: str) -> Client | None:
        """What :meth:`get_client` answers at once: the registered client ``client_id`` while
        the cache holds it fresh; ``None`` when only :meth:`get_client` can tell (not cached,
        or a ``client_id`` that is a metadata document URL)."""
        if looks_like_document_url(client_id):
            return None
        return self.client_cache.fresh(client_id)

    async def get_client(self, client_id: str, stores: Stores) -> Client | None:
        """A registered client, through the short-lived cache; or, for a ``client_id`` that is a
        URL, the client its metadata document describes (``document_client``)."""
        if looks_like_document_url(client_id):
            try:
                return await self.document_client(client_id, stores)
            except DocumentError:
                return None
        return await self._cached(
            self.client_cache, client_id, stores, lambda own: own.clients.get(client_id)
        )

    async def _cached(
        self,
        cache: TTLCache[_V],
        key: str,
        stores: Stores,
        fetch: Callable[[Stores], Awaitable[_V | None]],
    ) -> _V | None:
        """``cache``'s entry for ``key``, loaded by ``fetch`` when missing or expired: in the
        request's own stores when it holds a connection already (or there is no ``reads``),
        else on a short read of its own, so that the reload queues behind no writer."""
        reads = self.reads
        if stores.holds_connection or reads is None:
            return await cache.get(key, lambda: fetch(stores), wait=not stores.holds_connection)

        async def read() -> _V | None:
            async with reads() as own:
                return await fetch(own)

        return await cache.get(key, read, wait=True)

    def documents_resolved(
        self, client_id: str | None, transaction: Transaction
    ) -> AbstractAsyncContextManager[None]:
        """Resolve a ``client_id`` that is a metadata document URL BEFORE the request opens its
        transaction, and hand the result to the request's ``get_client`` calls within the
        block. Whoever starts a request chooses the document's server and so how long its fetch
        takes: the fetch holds no database connection (the kept copy is read, and a fetched one
        written, each in its own short transaction), and a ``no-store`` document is not fetched
        again inside the request's transaction. Anything else: nothing to do (a shared no-op
        context, not a generator made for every token request)."""
        if not client_id or not looks_like_document_url(client_id):
            return _NOTHING_TO_RESOLVE
        return self._document_resolved(client_id, transaction)

    @asynccontextmanager
    async def _document_resolved(
        self, client_id: str, transaction: Transaction
    ) -> AsyncIterator[None]:
        resolved: Client | DocumentError
        try:
            resolved = await self._resolve_shared(client_id, transaction)
        except DocumentError as exc:
            resolved = exc
        token = _RESOLVED.set({client_id: resolved})
        try:
            yield
        finally:
            _RESOLVED.reset(token)

    def _check_document_url(self, url: str) -> None:
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

    def _kept_in_process(self, url: str, now: int) -> Client | None:
        cached = self.document_clients.get(url)
        return cached[0] if cached is not None and cached[1] > now else None

    async def _fetch_document(self, url: str, now: int) -> tuple[Client, bytes, int]:
        """Fetch (no transaction may be held by the caller that can avoid it): the client, the
        body and its cache lifetime; a failure is remembered briefly."""
        if self.documents is None:
            raise DocumentError("client ID metadata documents are not accepted here")
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
        return client, fetched.body, fetched.max_age

    def _keep_in_process(self, url: str, client: Client, now: int, expires_at: int) -> None:
        if expires_at <= now:
            return
        if len(self.document_clients) >= MAX_CACHED_DOCUMENTS:
            self.document_clients = {k: v for k, v in self.document_clients.items() if v[1] > now}
            if len(self.document_clients) >= MAX_CACHED_DOCUMENTS:
                self.document_clients.pop(next(iter(self.document_clients)))
        self.document_clients[url] = (client, expires_at)

    async def _resolve_document(self, url: str, transaction: Transaction) -> Client:
        """``document_client``, each use of the stores in a ``transaction`` of its own (so
        that none is held across the fetch when it opens a new one)."""
        self._check_document_url(url)
        now = int(self.clock())
        kept = self._kept_in_process(url, now)
        if kept is not None:
            return kept
        async with transaction() as stores:
            body = await stores.client_documents.get(url, now)
        expires_at = now + int(self.policy.client_cache_ttl)
        if body is None:
            client, body, max_age = await self._fetch_document(url, now)
            if max_age > 0:
                async with transaction() as stores:
                    await stores.client_documents.put(url, body, now + max_age)
            expires_at = now + min(max_age, int(self.policy.client_cache_ttl))
        else:
            client = client_from_document(url, body, now=now)
        self._keep_in_process(url, client, now, expires_at)
        return client

    async def _resolve_shared(self, url: str, transaction: Transaction) -> Client:
        """``_resolve_document`` for a caller that holds no database connection: while a
        resolution of ``url`` is under way in this process, wait for it and take its client,
        so that 30 parallel first requests naming one document fetch it once (whoever names a
        document chooses the server the fetch goes to: the fetches must not multiply with the
        requests). When that resolution found no client (the document failed: remembered, so
        met again at once; or its request ended first), the waiter resolves it in turn. A
        caller inside a transaction (``document_client``) never waits: the resolution under way
        may need a connection that caller holds (SQLite has one)."""
        while (flight := self.document_flights.get(url)) is not None:
            client = await asyncio.shield(flight)
            if client is not None:
                return client
        flight = asyncio.get_running_loop().create_future()
        self.document_flights[url] = flight
        found: Client | None = None
        try:
            found = await self._resolve_document(url, transaction)
            return found
        finally:
            del self.document_flights[url]
            flight.set_result(found)

    async def document_client(self, url: str, stores: Stores) -> Client:
        """The client described by the metadata document at ``url``; ``DocumentError`` when
        metadata documents are off, the URL or its domain is refused, or the document cannot be
        fetched or used.

        Resolved before the request's transaction (``documents_resolved``) when the request
        did so: that result. Otherwise (a later step that finds the client_id in a stored
        interaction, a library caller) in the caller's transaction.

        The document is kept as long as its HTTP caching allows (the fetcher bounds it): in this
        process (at most ``client_cache_ttl`` seconds, like registered clients), and for every
        process in ``stores.client_documents`` (the database, or Redis when configured), so a
        request's later steps on other processes do not fetch it again. A kept document is
        validated again when read."""
        resolved = (_RESOLVED.get() or {}).get(url)
        if isinstance(resolved, DocumentError):
            raise resolved
        if resolved is not None:
            return resolved
        return await self._resolve_document(url, _within(stores))

    async def get_api(self, identifier: str, stores: Stores) -> Api | None:
        """A registered API, through the short-lived cache."""
        return await self._cached(
            self.api_cache, identifier, stores, lambda own: own.apis.get(identifier)
        )

    def known_apis_for(self, resource: str | None, client: Client) -> dict[str, Api] | None:
        """What :meth:`apis_for` answers at once, without a store: ``None`` when the API must
        be looked up (not cached)."""
        identifier = _named_api(resource, client)
        if identifier is None:
            return {}
        api = self.api_cache.fresh(identifier)
        return None if api is None else _offered(api, client)

    async def apis_for(
        self, resource: str | None, client: Client, stores: Stores
    ) -> dict[str, Api]:
        """The registered API a request names (``resource``, or the client's default API), if
        the client may use it: ``authorize.resolve_audience`` then decides, and refuses a
        resource outside the client's APIs with ``invalid_target`` (RFC 8707 §2). An API a
        static client may not use is not even looked up; for a dynamic client the API's
        ``dynamic_clients`` flag decides (``Client.may_use``)."""
        identifier = _named_api(resource, client)
        if identifier is None:
            return {}
        return _offered(await self.get_api(identifier, stores), client)

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


def _named_api(resource: str | None, client: Client) -> str | None:
    """The API a request names (``resource``, or the client's default API) when the client
    might use it, so that it is worth looking up (:meth:`ServerContext.apis_for`)."""
    identifier = resource or client.default_api
    return identifier if identifier is not None and client.might_use(identifier) else None


def _offered(api: Api | None, client: Client) -> dict[str, Api]:
    """``api`` by its identifier when it is registered and the client may use it, else none."""
    return {api.identifier: api} if api is not None and client.may_use(api) else {}
