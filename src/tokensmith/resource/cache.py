"""A bounded cache of already-verified tokens.

Keyed by the SHA-256 of the token (the token itself is never kept), least-recently-used entries
are evicted beyond ``max_entries``, and an entry never outlives the token's ``exp`` nor
``max_ttl``. A hit hands back the stored :class:`Principal`; the caller still re-checks the time
claims, so a cached token expires exactly when an uncached one would.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from .principal import Principal

__all__ = ["CachedToken", "VerifiedTokenCache"]


class CachedToken(NamedTuple):
    """A cache entry (a tuple: this sits on the hot path of every fresh token)."""

    principal: Principal
    expires_at: float
    not_before: float | None
    evict_at: float


class VerifiedTokenCache:
    """LRU map from token digest to its verified :class:`Principal`."""

    def __init__(self, max_entries: int = 10_000, *, max_ttl: float = 3600.0) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._entries: OrderedDict[bytes, CachedToken] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> CachedToken | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.evict_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def put(
        self,
        digest: bytes,
        principal: Principal,
        *,
        expires_at: float,
        not_before: float | None,
        now: float,
    ) -> None:
        if self.max_entries <= 0:
            return
        entries = self._entries
        if digest in entries:
            entries.move_to_end(digest)
        entries[digest] = CachedToken(
            principal, expires_at, not_before, min(expires_at, now + self.max_ttl)
        )
        if len(entries) > self.max_entries:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
