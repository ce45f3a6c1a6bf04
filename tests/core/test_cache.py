"""The one TTL cache (core.cache): the server's client/API cache and the resource toolkit's token
caches share its eviction and size rules."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

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


async def test_after_expiry_one_caller_reloads_while_the_others_get_the_expired_value() -> None:
    """An entry that expires under load: every request in flight misses at once. One reloads
    it; the others are served the expired value instead of each loading it (on SQLite's single
    connection they would otherwise queue one behind the other)."""
    clock = FakeClock(0.0)
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=clock)
    assert await cache.get("c", _value("old")) == "old"
    clock.advance(6.0)
    loads: list[int] = []
    release = asyncio.Event()

    async def reload() -> str:
        loads.append(1)
        await release.wait()
        return "new"

    reloading = asyncio.create_task(cache.get("c", reload))
    await asyncio.sleep(0)
    served = [await asyncio.wait_for(cache.get("c", reload), 5) for _ in range(5)]
    assert served == ["old"] * 5
    assert len(loads) == 1
    release.set()
    assert await reloading == "new"
    assert await cache.get("c", reload) == "new"  # cached now
    assert len(loads) == 1


async def test_the_expired_value_is_served_for_at_most_ttl_more_seconds() -> None:
    clock = FakeClock(0.0)
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=clock)
    await cache.get("c", _value("old"))
    clock.advance(6.0)
    release = asyncio.Event()

    async def stuck() -> str:
        await release.wait()
        return "late"

    reloading = asyncio.create_task(cache.get("c", stuck))
    await asyncio.sleep(0)
    clock.advance(5.0)  # 11 s: past the eviction time plus ttl
    assert await asyncio.wait_for(cache.get("c", _value("fresh")), 5) == "fresh"
    release.set()
    await reloading


async def test_no_caller_waits_for_another_callers_load() -> None:
    """A caller holding the only database connection (its request's transaction, opened for an
    earlier store call) must not wait for a load that needs that connection: with a shared load
    that was a deadlock until the pool's 60 s timeout (SQLite's pool has one connection; the
    logins benchmark's refresh preparation hung on it)."""
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    connection = asyncio.Lock()  # the pool of one
    loading = asyncio.Event()

    async def load_with_a_new_connection() -> str:
        loading.set()
        async with connection:
            return "client"

    async def holder() -> str:
        async with connection:  # the request's transaction is open
            await loading.wait()  # the other request's load of the same key is under way
            return await cache.get("c", _value("client"))  # its own transaction's connection

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    loader = asyncio.create_task(cache.get("c", load_with_a_new_connection))
    assert await asyncio.wait_for(asyncio.gather(held, loader), 5) == ["client", "client"]


async def test_a_failed_reload_drops_the_expired_value() -> None:
    clock = FakeClock(0.0)
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=clock)
    await cache.get("c", _value("old"))
    clock.advance(6.0)

    async def failing() -> str:
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        await cache.get("c", failing)
    assert await cache.get("c", _value("new")) == "new"  # not "old"


def _value(value: str) -> Callable[[], Awaitable[str]]:
    async def load() -> str:
        return value

    return load


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


async def test_a_caller_that_holds_nothing_waits_for_the_load_under_way() -> None:
    """A cold (or long expired) key and a burst of requests: one loads it, the others (holding
    no connection) wait and are served what it cached. Each loaded it for itself before, one
    after another on SQLite's connection: half a second for 16 requests under load."""
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    loads: list[int] = []
    release = asyncio.Event()

    async def load() -> str:
        loads.append(1)
        await release.wait()
        return "client"

    first = asyncio.create_task(cache.get("c", load, wait=True))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(cache.get("c", load, wait=True)) for _ in range(15)]
    await asyncio.sleep(0.01)
    assert len(loads) == 1
    assert not any(w.done() for w in waiters)
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *waiters), 5) == ["client"] * 16
    assert len(loads) == 1


@pytest.mark.parametrize("outcome", ["failed", "found nothing", "invalidated"])
async def test_waiters_load_for_themselves_when_the_load_under_way_cached_nothing(
    outcome: str,
) -> None:
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    release = asyncio.Event()

    async def first_load() -> str | None:
        await release.wait()
        if outcome == "failed":
            raise ConnectionError("database down")
        return None if outcome == "found nothing" else "before the change"

    first = asyncio.create_task(cache.get("c", first_load, wait=True))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get("c", _value("loaded by the waiter"), wait=True))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    if outcome == "invalidated":
        cache.invalidate("c")  # the load under way may predate the change: never served
    release.set()
    assert await asyncio.wait_for(waiter, 5) == "loaded by the waiter"
    await asyncio.gather(first, return_exceptions=True)


async def test_a_waiter_cancelled_leaves_the_load_and_the_other_waiters_alone() -> None:
    cache: TTLCache[str] = TTLCache(ttl=5.0, clock=FakeClock(0.0))
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "client"

    first = asyncio.create_task(cache.get("c", load, wait=True))
    await asyncio.sleep(0)
    gone, staying = (asyncio.create_task(cache.get("c", load, wait=True)) for _ in range(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, staying), 5) == ["client", "client"]
    assert gone.cancelled()


async def test_fresh_answers_what_get_answers_at_once_and_nothing_else() -> None:
    """``fresh`` (the token endpoint's look before it awaits ``get``): the value while its entry
    is fresh; ``None`` for a miss, an expired entry (``get`` reloads it, or serves it stale while
    another caller does), an invalidated one, and whenever caching is off."""
    clock = FakeClock(1000.0)
    cache: TTLCache[str] = TTLCache(ttl=10.0, clock=clock)
    assert cache.fresh("k") is None

    async def load() -> str:
        return "v"

    assert await cache.get("k", load) == "v"
    assert cache.fresh("k") == "v"
    clock.advance(9.9)
    assert cache.fresh("k") == "v"
    clock.advance(0.1)
    assert cache.fresh("k") is None
    assert await cache.get("k", load) == "v"  # reloaded
    assert cache.fresh("k") == "v"
    cache.invalidate("k")
    assert cache.fresh("k") is None
    off: TTLCache[str] = TTLCache(ttl=0.0, clock=clock)
    off.put("k", "v", evict_at=clock() + 100)
    assert off.fresh("k") is None
