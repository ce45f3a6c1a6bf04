"""The one TTL cache (core.cache): the server's client/API cache and the resource toolkit's token
caches share its eviction and size rules."""

from __future__ import annotations

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
