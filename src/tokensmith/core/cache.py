"""The one in-process cache: a bounded LRU map whose entries each carry an eviction time.

Used by the server for registered clients and APIs (the token endpoint's hot path looks the client
up on every request; caching it for a few seconds saves a database round-trip) and by the
resource toolkit for verified and introspected tokens. The price of the server's use is a
documented staleness: a change made through another process (a rotated secret, a deleted client)
is seen within ``ttl`` seconds; ``ttl=0`` disables it. Bounded in size (least recently used
entries go first); entries are immutable values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

from tokensmith.core.clock import Clock, system_clock

__all__ = ["CacheEntry", "TTLCache"]

V = TypeVar("V")


class _LoadFailed(Exception):
    """The load that other callers waited for raised or was cancelled."""


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
        self._loading: dict[Hashable, asyncio.Future[V | None]] = {}

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

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, or ``load()``'s (not cached when ``None``).

        One load a key at a time: callers that miss while a load of the same key is under way
        wait for its value instead of each loading it (when an entry expires under load, every
        request in flight misses at once; on SQLite's single connection their loads would run
        one after another, the last waiting for all the others). If that load fails (or its
        caller is cancelled), each waiting caller loads for itself."""
        if self.ttl <= 0:
            return await load()
        now = self.clock()
        entry = self._entries.get(key)  # :meth:`lookup`, inline: the token endpoint's hot path
        if entry is not None:
            if now < entry.evict_at:
                self._entries.move_to_end(key)
                return entry.value
            del self._entries[key]
        pending = self._loading.get(key)
        if pending is not None:
            with contextlib.suppress(_LoadFailed):
                return await asyncio.shield(pending)
            return await load()
        pending = asyncio.get_running_loop().create_future()
        self._loading[key] = pending
        try:
            value = await load()
        except BaseException:
            pending.set_exception(_LoadFailed())
            pending.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            # not invalidated while loading (else the value may predate the change: not kept)
            current = self._loading.get(key) is pending
            if current:
                del self._loading[key]
        pending.set_result(value)
        if value is None:
            if current:
                self._entries.pop(key, None)
            return None
        if current:
            self.put(key, value, evict_at=now + self.ttl)
        return value

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget ``key``, or every entry."""
        if key is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(key, None)
            self._loading.pop(key, None)  # a caller that misses now loads afresh
