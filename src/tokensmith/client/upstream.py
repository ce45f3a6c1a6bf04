"""Calling the provider's API on the user's behalf, with the stored (encrypted) tokens.

The access token goes only in the ``Authorization`` header (RFC 6750 §2.1) and only to the
provider's own API URLs (:meth:`Provider.api_urls`; RFC 9700 §4.9, §4.3.2); redirects are not
followed. An expired token, or a 401 from the provider, triggers exactly one refresh (RFC 6749 §6)
through the :class:`~tokensmith.client.vault.UpstreamTokenVault`, which also settles refreshes
racing across workers; if the provider still refuses, :class:`ReloginRequired` tells the app to
send the user through login again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import httpx

from tokensmith.client.errors import ReloginRequired
from tokensmith.client.models import UpstreamTokens
from tokensmith.client.vault import UpstreamTokenVault

__all__ = ["ProviderAPI"]

_EXPIRY_MARGIN = 30.0


class ProviderAPI:
    """``await api.get("/user")`` as the signed-in user, at one provider."""

    def __init__(self, vault: UpstreamTokenVault, *, user_id: str, provider: str) -> None:
        self._vault = vault
        self._user_id = user_id
        self._name = provider
        self._provider = vault.providers.provider(provider)

    async def _allowed_bases(self) -> tuple[str, ...]:
        return self._provider.api_urls(await self._vault.providers.metadata(self._name))

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
        tokens = await self._vault.load(self._user_id, self._name)
        if tokens is None:
            raise ReloginRequired(f"no stored tokens for {self._user_id}/{self._name}")
        refreshed = False
        now = self._vault.clock()
        if tokens.expires_at is not None and tokens.expires_at - _EXPIRY_MARGIN <= now:
            tokens = await self._vault.refresh(self._user_id, self._name, tokens)
            refreshed = True
        response = await self._send(method, target, tokens, kwargs)
        if response.status_code != 401:
            return response
        await response.aclose()
        if refreshed:
            raise ReloginRequired("provider refused a freshly refreshed token")
        tokens = await self._vault.refresh(self._user_id, self._name, tokens)
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
        return await self._vault.http.request(
            method, url, headers=headers, follow_redirects=False, **kwargs
        )
