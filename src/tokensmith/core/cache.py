"""The one in-process cache: a bounded LRU map whose entries each carry an eviction time.

Used by the server for registered clients and APIs (the token endpoint's hot path looks the client
up on every request; caching it for a few seconds saves a database round-trip) and by the
resource toolkit for verified and introspected tokens. The price of the server's use is a
documented staleness: a change made through another process (a rotated secret, a deleted client)
is seen within ``ttl`` seconds (plus the duration of one reload, see :meth:`TTLCache.get`);
``ttl=0`` disables it. Bounded in size (least recently used entries go first); entries are
immutable values.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

from tokensmith.core.clock import Clock, system_clock

__all__ = ["CacheEntry", "TTLCache"]

V = TypeVar("V")


class CacheEntry(NamedTuple, Generic[V]):
    """A cached value and the time from which it is no longer served."""

    value: V
    evict_at: float


class TTLCache(Generic[V]):
    """LRU map from a key to a value with its own eviction time.

    :meth:`lookup` / :meth:`put` take the time and the eviction time from the caller (an entry
    that must not outlive a token's ``exp``); :meth:`get` is the read-through form that evicts
    ``ttl`` seconds after loading, by ``clock``.
    """

    def __init__(
        self, *, ttl: float = 0.0, clock: Clock = system_clock, max_entries: int = 10_000
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, CacheEntry[V]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Event] = {}
        """Keys being loaded, each with the event of the load in progress (set when it ends)."""

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Hashable, now: float) -> CacheEntry[V] | None:
        """The entry for ``key`` while ``now`` is before its eviction time, else ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.evict_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: V, *, evict_at: float) -> None:
        """Remember ``value`` until ``evict_at``, dropping the least recently used beyond the
        bound (nothing is kept when ``max_entries`` is 0)."""
        if self.max_entries <= 0:
            return
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = CacheEntry(value, evict_at)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[V | None]], *, wait: bool = False
    ) -> V | None:
        """The cached value, or ``load()``'s (not cached when ``None``).

        When an entry expires under load, every request in flight misses at once; on SQLite's
        single connection their loads would run one after another, the last waiting for all
        the others. So the first caller after expiry reloads the entry while the callers that
        follow are served the expired value (for at most ``ttl`` more seconds) instead of each
        loading it.

        With no value to serve (cold, long expired, or invalidated: a change made through this
        process is never served stale), a caller that arrives while another loads the key
        waits for that load when it may (``wait``) and is served what it cached; otherwise,
        or when that load cached nothing (it failed, found nothing, or straddled an
        invalidation), it loads for itself. ``wait`` is for a caller that holds nothing the
        load may need: a caller holding the only database connection (a request's
        transaction, opened for an earlier store call) must not wait for a load that needs
        it, or both wait until the pool's timeout. Without the wait, a burst after an idle
        spell (or the first after start) loaded the key once per request in flight, one after
        another on SQLite's connection: about half a second for 16 requests under load.

        A load that straddles :meth:`invalidate` is not cached; a failed reload drops the
        expired value."""
        if self.ttl <= 0:
            return await load()
        now = self.clock()
        entry = self._entries.get(key)  # :meth:`lookup`, inline: the token endpoint's hot path
        if entry is not None:
            if now < entry.evict_at:
                self._entries.move_to_end(key)
                return entry.value
            if key in self._loading and now < entry.evict_at + self.ttl:
                return entry.value  # stale, while the first caller after expiry reloads it
        loading = self._loading.get(key)
        if loading is not None:
            if wait:
                await loading.wait()
                fresh = self.lookup(key, self.clock())
                if fresh is not None:
                    return fresh.value
            return await load()  # see above: never wait while holding what the load needs
        marker = self._loading[key] = asyncio.Event()
        try:
            value = await load()
        except BaseException:
            if self._loading.get(key) is marker:
                del self._loading[key]
                self._entries.pop(key, None)  # no stale value served past a failed reload
            marker.set()
            raise
        # not invalidated while loading (else the value may predate the change: not kept)
        if self._loading.get(key) is marker:
            del self._loading[key]
            if value is None:
                self._entries.pop(key, None)
            else:
                self.put(key, value, evict_at=now + self.ttl)
        marker.set()
        return value

    def fresh(self, key: Hashable) -> V | None:
        """What :meth:`get` answers at once, without loading nor awaiting: the value while its
        entry is fresh (and caching is on), else ``None`` (then :meth:`get` decides). For the
        token endpoint's hot path, which awaits :meth:`get` only when this has no answer."""
        entry = self._entries.get(key)
        if entry is None or self.ttl <= 0 or self.clock() >= entry.evict_at:
            return None
        self._entries.move_to_end(key)
        return entry.value

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget ``key``, or every entry."""
        if key is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(key, None)
            self._loading.pop(key, None)  # a caller that misses now loads afresh
        # (callers waiting for a load that straddles this find nothing cached: they load)
