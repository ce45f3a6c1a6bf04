"""A bounded cache of already-verified tokens.

Keyed by the BLAKE2b-256 digest of the token (the token itself is never kept), least-recently-used
entries are evicted beyond ``max_entries``, and an entry never outlives the token's ``exp`` nor
``max_ttl``. A hit hands back the stored :class:`Principal`; the caller still re-checks ``nbf``,
so a cached token expires exactly when an uncached one would, and one with an ``nbf`` is refused
again if the clock is set back before it.
"""

from __future__ import annotations

from typing import NamedTuple

from tokensmith.core.cache import TTLCache

from .principal import Principal

__all__ = ["CachedToken", "VerifiedTokenCache"]


class CachedToken(NamedTuple):
    """A cache entry (a tuple: this sits on the hot path of every fresh token)."""

    principal: Principal
    expires_at: float
    not_before: float | None
    evict_at: float


class VerifiedTokenCache:
    """LRU map from token digest to its verified :class:`Principal` (a
    :class:`tokensmith.core.cache.TTLCache` whose entries never outlive the token)."""

    def __init__(self, max_entries: int = 10_000, *, max_ttl: float = 3600.0) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._entries: TTLCache[CachedToken] = TTLCache(max_entries=max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> CachedToken | None:
        entry = self._entries.lookup(digest, now)
        return None if entry is None else entry.value

    def put(
        self,
        digest: bytes,
        principal: Principal,
        *,
        expires_at: float,
        not_before: float | None,
        now: float,
    ) -> None:
        evict_at = min(expires_at, now + self.max_ttl)
        self._entries.put(
            digest, CachedToken(principal, expires_at, not_before, evict_at), evict_at=evict_at
        )

    def clear(self) -> None:
        self._entries.invalidate()
