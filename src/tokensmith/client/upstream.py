"""Calling the provider's API on the user's behalf, with the stored (encrypted) tokens.

The access token goes only in the ``Authorization`` header (RFC 6750 §2.1) and only to the
provider's own API base URLs (RFC 9700 §4.9, §4.3.2); redirects are not followed. An expired
token, or a 401 from the provider, triggers exactly one refresh (RFC 6749 §6); if the provider still
refuses, :class:`ReloginRequired` tells the app to send the user through login again.

Refreshes race across worker processes: providers that rotate refresh tokens (RFC 9700 §4.14.2;
GitHub) accept a refresh token once, so when two workers refresh at the same moment the second is
refused with ``invalid_grant`` although the first has just stored fresh tokens. The per-process
lock cannot see the other worker, so a refusal is never taken at its word: the stored tokens are
read again, and if another worker (or a new login) replaced them, those are used. Only when they
are still the ones we tried - checked again after a short grace for a worker between the
provider's answer and its write - and the provider said the refresh token is dead
(``invalid_grant``) are they deleted, by a compare-and-delete that leaves newer tokens alone.
"""

from __future__ import annotations

import asyncio
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
# RFC 6749 §5.2 ``invalid_grant``; GitHub says ``bad_refresh_token``. Other refusals (e.g.
# ``invalid_client``) say nothing about the refresh token, so they never delete it.
_DEAD_REFRESH_TOKEN = frozenset({"invalid_grant", "bad_refresh_token"})
# how long, in steps, a refused refresh waits for another worker's write before deleting
_RACE_GRACE_STEPS = (0.05, 0.1, 0.2)


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
            record = await self._service.load_sealed_upstream_tokens(self._user_id, self._name)
            if record is None:
                raise ReloginRequired("stored tokens are gone")
            sealed, current = record
            if current.access_token != tokens.access_token:
                return current  # refreshed by a concurrent request (or worker) meanwhile
            return await self._refresh_locked(current, sealed)

    async def _refresh_locked(self, tokens: UpstreamTokens, sealed: str) -> UpstreamTokens:
        if tokens.refresh_token is None:
            raise ReloginRequired("access token refused and no refresh token")
        metadata = await self._service.metadata(self._name)
        try:
            body = await refresh_tokens(
                self._service.http, self._provider, metadata, tokens.refresh_token
            )
        except ProviderError as exc:
            dead = exc.error in _DEAD_REFRESH_TOKEN
            newer = await self._stored_since(sealed, grace=dead)
            if newer is not None:
                return newer  # another worker refreshed with the same refresh token first
            if dead:
                deleted = await self._service.store.delete_upstream_tokens_if(
                    self._user_id, self._name, sealed=sealed
                )
                if not deleted:  # replaced between our last look and the delete
                    newer = await self._stored_since(sealed, grace=False)
                    if newer is not None:
                        return newer
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

    async def _stored_since(self, sealed: str, *, grace: bool = True) -> UpstreamTokens | None:
        """Tokens stored in place of ``sealed`` (by another worker or a new login), if any;
        with ``grace``, looks again a few times over a third of a second before answering no."""
        for pause in (0.0, *(_RACE_GRACE_STEPS if grace else ())):
            if pause:
                await asyncio.sleep(pause)
            record = await self._service.load_sealed_upstream_tokens(self._user_id, self._name)
            if record is not None and record[0] != sealed:
                return record[1]
        return None
