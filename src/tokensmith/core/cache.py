"""A small in-process TTL cache for registered clients and APIs.

The token endpoint's hot path looks the client up on every request; caching it for a few seconds
saves a database round-trip. The price is a documented staleness: a change made through another
process (a rotated secret, a deleted client) is seen within ``ttl`` seconds. ``ttl=0`` disables
the cache. Bounded in size; entries are immutable values.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from tokensmith.core.clock import Clock

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, *, ttl: float, clock: Clock, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    async def get(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, or ``load()``'s (not cached when ``None``)."""
        if self.ttl <= 0:
            return await load()
        now = self.clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if value is None:
            self._entries.pop(key, None)
            return None
        self._entries[key] = (now + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def invalidate(self, key: str | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
