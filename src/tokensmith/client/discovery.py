"""The configured providers, their metadata and their signing keys, cached.

:class:`ProviderDirectory` answers "which provider is ``name``" (:class:`UnknownProvider`
otherwise), "what are its endpoints" (:meth:`Provider.discover`, cached for ``discovery_ttl``; a
failure remembered for ``discovery_failure_ttl`` - a negative cache, so a provider that is down
costs one outbound call per interval, not one per login or back-channel request) and "which key
signed this" (one JWKS cache per provider). The login flow and the upstream-token vault share one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import httpx
import jwt

from tokensmith.client.config import ClientConfig
from tokensmith.client.errors import InvalidIdToken, ProviderUnavailable, UnknownProvider
from tokensmith.client.flow import ProviderMetadata
from tokensmith.client.id_token import KeyLookup
from tokensmith.client.providers import KeysFor, Provider
from tokensmith.resource import IssuerUnavailableError, JWKSCache

__all__ = ["JWKSFactory", "KeyResolver", "ProviderDirectory"]


class KeyResolver(Protocol):
    """What the toolkit needs of a JWKS cache (``tokensmith.resource.JWKSCache``)."""

    async def get_key(self, kid: str | None, alg: str) -> jwt.PyJWK: ...


JWKSFactory = Callable[[httpx.AsyncClient, str], KeyResolver]


class ProviderDirectory:
    """The configured providers by name, with their metadata and signing keys cached."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
        jwks_factory: JWKSFactory | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self._jwks_factory = jwks_factory or self._default_jwks_factory
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        # negative cache: provider name -> (retry_at, detail); one entry per configured provider
        self._metadata_failures: dict[str, tuple[float, str]] = {}
        self._metadata_locks: dict[str, asyncio.Lock] = {}
        self._jwks: dict[str, KeyResolver] = {}

    def provider(self, name: str) -> Provider:
        provider = self.config.providers.get(name)
        if provider is None:
            raise UnknownProvider(f"no provider {name!r}")
        return provider

    async def metadata(self, name: str) -> ProviderMetadata:
        """The provider's metadata, from the cache or :meth:`Provider.discover` (one discovery
        at a time per provider: concurrent requests share its outcome)."""
        provider = self.provider(name)
        cached = self._metadata.get(name)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        lock = self._metadata_locks.setdefault(name, asyncio.Lock())
        async with lock:
            now = self.clock()
            cached = self._metadata.get(name)
            if cached is not None and cached[0] > now:
                return cached[1]
            failed = self._metadata_failures.get(name)
            if failed is not None and failed[0] > now:
                raise ProviderUnavailable(
                    f"discovery failed recently, not retried yet: {failed[1]}"
                )
            try:
                metadata = await provider.discover(self.http)
            except ProviderUnavailable as exc:
                self._metadata_failures[name] = (now + provider.discovery_failure_ttl, exc.detail)
                raise
            self._metadata_failures.pop(name, None)
            self._metadata[name] = (now + provider.discovery_ttl, metadata)
            return metadata

    def keys_for(self, name: str) -> KeysFor:
        """The key lookup of provider ``name``'s ``jwks_uri`` (one JWKS cache per provider)."""

        def lookup(jwks_uri: str) -> KeyLookup:
            return self._key_lookup(name, jwks_uri)

        return lookup

    def _default_jwks_factory(self, http: httpx.AsyncClient, jwks_uri: str) -> KeyResolver:
        """``tokensmith.resource.JWKSCache``: an unknown ``kid`` (key rotation) triggers at most
        one refetch per 30 s, on the same injected clock as the rest of the toolkit."""
        return JWKSCache(
            http, jwks_uri, min_refetch_interval=30.0, default_ttl=300.0, clock=self.clock
        )

    def _key_lookup(self, name: str, jwks_uri: str) -> KeyLookup:
        resolver = self._jwks.get(name)
        if resolver is None:
            resolver = self._jwks[name] = self._jwks_factory(self.http, jwks_uri)

        async def get_key(kid: str | None, alg: str) -> jwt.PyJWK:
            try:
                return await resolver.get_key(kid, alg)
            except IssuerUnavailableError as exc:
                raise ProviderUnavailable(f"JWKS unavailable: {exc.detail}") from exc
            except Exception as exc:  # unknown kid, unusable key, bad JWKS document
                raise InvalidIdToken(f"no usable key: {type(exc).__name__}: {exc}") from exc

        return get_key
