"""Calling the provider's API on the user's behalf, with the stored (encrypted) tokens.

The access token goes only in the ``Authorization`` header (RFC 6750 §2.1) and only to the
provider's own API base URLs (RFC 9700 §4.9, §4.3.2); redirects are not followed. An expired
token, or a 401 from the provider, triggers exactly one refresh (RFC 6749 §6); if the provider still
refuses, :class:`ReloginRequired` tells the app to send the user through login again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from tokensmith.client.errors import ProviderError, ReloginRequired
from tokensmith.client.flow import refresh_tokens, tokens_from_response
from tokensmith.client.models import UpstreamTokens
from tokensmith.client.providers import GitHubProvider

if TYPE_CHECKING:
    from tokensmith.client.login import LoginService

__all__ = ["ProviderAPI"]

_EXPIRY_MARGIN = 30.0


class ProviderAPI:
    """``await api.get("/user")`` as the signed-in user, at one provider."""

    def __init__(self, service: LoginService, *, user_id: str, provider: str) -> None:
        self._service = service
        self._user_id = user_id
        self._name = provider
        self._provider = service.provider(provider)

    async def _allowed_bases(self) -> tuple[str, ...]:
        bases = list(self._provider.api_base_urls)
        if not isinstance(self._provider, GitHubProvider):
            userinfo = (await self._service.metadata(self._name)).userinfo_endpoint
            if userinfo:
                bases.append(userinfo)
        return tuple(bases)

    async def _resolve(self, url: str) -> str:
        bases = await self._allowed_bases()
        if not bases:
            raise ValueError(f"provider {self._name!r} has no api_base_urls configured")
        if "://" not in url:
            base = bases[0] if bases[0].endswith("/") else bases[0] + "/"
            url = urljoin(base, url.lstrip("/"))
        for base in bases:
            prefix = base if base.endswith("/") else base + "/"
            if url == base or url.startswith(prefix):
                return url
        raise ValueError(f"{url!r} is not an API URL of provider {self._name!r}")

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request with the user's token; refresh once on expiry or 401."""
        target = await self._resolve(url)
        tokens = await self._service.load_upstream_tokens(self._user_id, self._name)
        if tokens is None:
            raise ReloginRequired(f"no stored tokens for {self._user_id}/{self._name}")
        refreshed = False
        now = self._service.clock()
        if tokens.expires_at is not None and tokens.expires_at - _EXPIRY_MARGIN <= now:
            tokens = await self._refresh(tokens)
            refreshed = True
        response = await self._send(method, target, tokens, kwargs)
        if response.status_code != 401:
            return response
        await response.aclose()
        if refreshed:
            raise ReloginRequired("provider refused a freshly refreshed token")
        tokens = await self._refresh(tokens)
        response = await self._send(method, target, tokens, kwargs)
        if response.status_code == 401:
            await response.aclose()
            raise ReloginRequired("provider refused the token after a refresh")
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def _send(
        self, method: str, url: str, tokens: UpstreamTokens, kwargs: dict[str, Any]
    ) -> httpx.Response:
        kwargs = dict(kwargs)
        kwargs.pop("follow_redirects", None)  # never carry the token along a redirect
        kwargs.pop("auth", None)
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {tokens.access_token}"
        kwargs.setdefault("timeout", self._provider.timeout)
        return await self._service.http.request(
            method, url, headers=headers, follow_redirects=False, **kwargs
        )

    async def _refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        async with self._service.refresh_lock(self._user_id, self._name):
            current = await self._service.load_upstream_tokens(self._user_id, self._name)
            if current is None:
                raise ReloginRequired("stored tokens are gone")
            if current.access_token != tokens.access_token:
                return current  # refreshed by a concurrent request meanwhile
            return await self._refresh_locked(current)

    async def _refresh_locked(self, tokens: UpstreamTokens) -> UpstreamTokens:
        if tokens.refresh_token is None:
            raise ReloginRequired("access token refused and no refresh token")
        metadata = await self._service.metadata(self._name)
        try:
            body = await refresh_tokens(
                self._service.http, self._provider, metadata, tokens.refresh_token
            )
        except ProviderError as exc:
            await self._service.store.delete_upstream_tokens(self._user_id, self._name)
            raise ReloginRequired(f"refresh refused: {exc.detail}") from exc
        fresh = tokens_from_response(body, now=self._service.clock())
        if fresh.refresh_token is None:  # RFC 6749 §6: the old one stays valid if none is issued
            fresh = UpstreamTokens(
                access_token=fresh.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=fresh.expires_at,
                scope=fresh.scope or tokens.scope,
            )
        await self._service.save_upstream_tokens(self._user_id, self._name, fresh)
        return fresh
