"""The upstream-token vault: the provider's tokens of each user, sealed, refreshed when refused.

Tokens are stored AES-GCM sealed (:class:`CookieKeyRing` ``tokens`` key), bound to the user and
the provider by the associated data, so a row copied to another user does not open.

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
import json
import logging
import weakref
from collections.abc import Callable

import httpx

from tokensmith.client.crypto import CookieKeyRing
from tokensmith.client.discovery import ProviderDirectory
from tokensmith.client.errors import ProviderError, ReloginRequired
from tokensmith.client.flow import refresh_tokens, tokens_from_response
from tokensmith.client.models import UpstreamTokens
from tokensmith.client.storage import UpstreamTokenStore

__all__ = ["UpstreamTokenVault"]

logger = logging.getLogger("tokensmith.client")

# RFC 6749 §5.2 ``invalid_grant``; GitHub says ``bad_refresh_token``. Other refusals (e.g.
# ``invalid_client``) say nothing about the refresh token, so they never delete it.
_DEAD_REFRESH_TOKEN = frozenset({"invalid_grant", "bad_refresh_token"})
# how long, in steps, a refused refresh waits for another worker's write before deleting
_RACE_GRACE_STEPS = (0.05, 0.1, 0.2)


class UpstreamTokenVault:
    """The provider's tokens per user and provider: sealed on an :class:`UpstreamTokenStore`,
    refreshed one at a time per user and provider, deleted only by compare-and-delete."""

    def __init__(
        self,
        *,
        store: UpstreamTokenStore,
        keys: CookieKeyRing,
        providers: ProviderDirectory,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.keys = keys
        self.providers = providers
        self.http = http
        self.clock = clock
        self._refresh_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # sealed storage ---------------------------------------------------------------------------
    async def save(self, user_id: str, provider: str, tokens: UpstreamTokens) -> None:
        data = json.dumps(
            {
                "a": tokens.access_token,
                "r": tokens.refresh_token,
                "e": tokens.expires_at,
                "s": tokens.scope,
            }
        ).encode()
        sealed = self.keys.tokens.seal(data, _token_aad(user_id, provider))
        await self.store.save_upstream_tokens(user_id, provider, sealed)

    async def load(self, user_id: str, provider: str) -> UpstreamTokens | None:
        record = await self.load_sealed(user_id, provider)
        return None if record is None else record[1]

    async def load_sealed(self, user_id: str, provider: str) -> tuple[str, UpstreamTokens] | None:
        """The stored tokens together with their sealed form, which identifies this version of
        them (every seal has a fresh nonce) for a compare-and-delete."""
        sealed = await self.store.load_upstream_tokens(user_id, provider)
        if sealed is None:
            return None
        raw = self.keys.tokens.open(sealed, _token_aad(user_id, provider))
        if raw is None:
            logger.warning("upstream tokens of %s/%s do not decrypt", user_id, provider)
            return None
        data = json.loads(raw)
        return sealed, UpstreamTokens(
            access_token=data["a"],
            refresh_token=data["r"],
            expires_at=data["e"],
            scope=data["s"],
        )

    # refresh ----------------------------------------------------------------------------------
    def refresh_lock(self, user_id: str, provider: str) -> asyncio.Lock:
        """One refresh at a time per user and provider (in this process): providers that rotate
        refresh tokens would otherwise see the second, concurrent refresh as a replay."""
        key = (user_id, provider)
        lock = self._refresh_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._refresh_locks[key] = lock
        return lock

    async def refresh(self, user_id: str, provider: str, tokens: UpstreamTokens) -> UpstreamTokens:
        """Fresh tokens in place of ``tokens`` (refused or expired): another request's or
        worker's if they already replaced them, else a refresh (RFC 6749 §6); raises
        :class:`ReloginRequired` when the user must sign in again."""
        async with self.refresh_lock(user_id, provider):
            record = await self.load_sealed(user_id, provider)
            if record is None:
                raise ReloginRequired("stored tokens are gone")
            sealed, current = record
            if current.access_token != tokens.access_token:
                return current  # refreshed by a concurrent request (or worker) meanwhile
            return await self._refresh_locked(user_id, provider, current, sealed)

    async def _refresh_locked(
        self, user_id: str, name: str, tokens: UpstreamTokens, sealed: str
    ) -> UpstreamTokens:
        if tokens.refresh_token is None:
            raise ReloginRequired("access token refused and no refresh token")
        provider = self.providers.provider(name)
        metadata = await self.providers.metadata(name)
        try:
            body = await refresh_tokens(self.http, provider, metadata, tokens.refresh_token)
        except ProviderError as exc:
            dead = exc.error in _DEAD_REFRESH_TOKEN
            newer = await self._stored_since(user_id, name, sealed, grace=dead)
            if newer is not None:
                return newer  # another worker refreshed with the same refresh token first
            if dead:
                deleted = await self.store.delete_upstream_tokens_if(user_id, name, sealed=sealed)
                if not deleted:  # replaced between our last look and the delete
                    newer = await self._stored_since(user_id, name, sealed, grace=False)
                    if newer is not None:
                        return newer
            raise ReloginRequired(f"refresh refused: {exc.detail}") from exc
        fresh = tokens_from_response(body, now=self.clock())
        if fresh.refresh_token is None:  # RFC 6749 §6: the old one stays valid if none is issued
            fresh = UpstreamTokens(
                access_token=fresh.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=fresh.expires_at,
                scope=fresh.scope or tokens.scope,
            )
        await self.save(user_id, name, fresh)
        return fresh

    async def _stored_since(
        self, user_id: str, provider: str, sealed: str, *, grace: bool = True
    ) -> UpstreamTokens | None:
        """Tokens stored in place of ``sealed`` (by another worker or a new login), if any;
        with ``grace``, looks again a few times over a third of a second before answering no."""
        for pause in (0.0, *(_RACE_GRACE_STEPS if grace else ())):
            if pause:
                await asyncio.sleep(pause)
            record = await self.load_sealed(user_id, provider)
            if record is not None and record[0] != sealed:
                return record[1]
        return None


def _token_aad(user_id: str, provider: str) -> bytes:
    return b"upstream|" + user_id.encode() + b"|" + provider.encode()
