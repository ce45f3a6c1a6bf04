"""The one TTL cache (core.cache): the server's client/API cache and the resource toolkit's token
caches share its eviction and size rules."""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.core.cache import TTLCache
from tokensmith.core.clock import FakeClock


def test_an_entry_is_served_until_its_eviction_time_and_not_after() -> None:
    cache: TTLCache[str] = TTLCache()
    cache.put(b"k", "v", evict_at=100.0)
    hit = cache.lookup(b"k", 99.9)
    assert hit is not None
    assert hit.value == "v"
    assert cache.lookup(b"k", 100.0) is None
    assert len(cache) == 0


def test_a_cached_none_is_told_apart_from_a_miss() -> None:
    cache: TTLCache[str | None] = TTLCache()
    cache.put("inactive", None, evict_at=10.0)
    hit = cache.lookup("inactive", 0.0)
    assert hit is not None
    assert hit.value is None
    assert cache.lookup("unknown", 0.0) is None


def test_the_least_recently_used_entry_goes_beyond_the_bound() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=2)
    cache.put("a", 1, evict_at=10.0)
    cache.put("b", 2, evict_at=10.0)
    assert cache.lookup("a", 0.0) is not None  # a is now the most recently used
    cache.put("c", 3, evict_at=10.0)
    assert cache.lookup("b", 0.0) is None
    assert cache.lookup("a", 0.0) is not None
    assert cache.lookup("c", 0.0) is not None


def test_a_zero_bound_keeps_nothing() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=0)
    cache.put("a", 1, evict_at=10.0)
    assert cache.lookup("a", 0.0) is None


async def test_read_through_loads_once_per_ttl_and_never_caches_a_miss() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(ttl=5, clock=clock)
    loads: list[str] = []

    async def load() -> str | None:
        loads.append("x")
        return "value"

    async def missing() -> str | None:
        loads.append("miss")
        return None

    assert await cache.get("k", load) == "value"
    assert await cache.get("k", load) == "value"
    clock.advance(5)
    assert await cache.get("k", load) == "value"
    assert await cache.get("gone", missing) is None
    assert await cache.get("gone", missing) is None
    assert loads == ["x", "x", "miss", "miss"]


async def test_ttl_zero_disables_the_read_through_cache() -> None:
    cache: TTLCache[str] = TTLCache(ttl=0, clock=FakeClock())
    calls = 0

    async def load() -> str | None:
        nonlocal calls
        calls += 1
        return "value"

    await cache.get("k", load)
    await cache.get("k", load)
    assert calls == 2


async def test_callers_that_miss_together_share_one_load() -> None:
    """An entry that expires under load: every request in flight misses at once, and one load
    serves them all (on SQLite's single connection they would otherwise queue one behind the
    other)."""
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    loads: list[int] = []
    release = asyncio.Event()

    async def load() -> str:
        loads.append(1)
        await release.wait()
        return "client"

    waiting = [asyncio.create_task(cache.get("c", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["client"] * 5
    assert len(loads) == 1
    assert await cache.get("c", load) == "client"  # cached now
    assert len(loads) == 1


async def test_when_the_shared_load_fails_each_waiting_caller_loads_for_itself() -> None:
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    release = asyncio.Event()

    async def failing() -> str:
        await release.wait()
        raise ConnectionError("database down")

    async def working() -> str:
        return "client"

    first = asyncio.create_task(cache.get("c", failing))
    await asyncio.sleep(0)
    others = [asyncio.create_task(cache.get("c", working)) for _ in range(2)]
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*others) == ["client", "client"]


async def test_a_caller_after_an_invalidation_does_not_wait_for_the_earlier_load() -> None:
    """...and the load that straddled the invalidation is not cached."""
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    release = asyncio.Event()

    async def old() -> str:
        await release.wait()
        return "before the change"

    async def new() -> str:
        return "after the change"

    first = asyncio.create_task(cache.get("c", old))
    await asyncio.sleep(0)
    cache.invalidate("c")
    assert await cache.get("c", new) == "after the change"
    release.set()
    assert await first == "before the change"
    assert await cache.get("c", old) == "after the change"  # the earlier load was not kept
