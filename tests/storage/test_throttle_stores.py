"""Store contract: login attempt counters (``core.ports.LoginFailureStore``) on every
implementation: a reservation is one atomic step, so of 30 at once exactly as many are granted
as the back-off policy admits; releases never go below zero; a counter is forgotten after its
TTL; ``clear`` forgets it at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tokensmith.core.throttle import BackoffPolicy, FailureCount
from tokensmith.storage.compose import Database

N = 30
TTL = 3600


def now() -> int:
    return int(time.time())  # Redis forgets a counter on the real clock


async def reserve_many(db: Database, key: str, at: int, policy: BackoffPolicy) -> int:
    async def one() -> bool:
        async with db.transaction() as s:
            return (await s.login_failures.reserve(key, at, policy=policy, ttl=TTL)).granted

    return sum(await asyncio.gather(*(one() for _ in range(N))))


@pytest.mark.parametrize(
    "policy",
    [
        BackoffPolicy(free_attempts=5, base_delay=1, max_delay=60),
        BackoffPolicy(free_attempts=1, base_delay=60, max_delay=60),
    ],
)
async def test_parallel_reservations_grant_exactly_what_the_policy_admits(
    db: Database, policy: BackoffPolicy
) -> None:
    t0 = now()
    assert await reserve_many(db, "user:race", t0, policy) == policy.free_attempts
    async with db.transaction() as s:
        record = await s.login_failures.get("user:race")
        assert record == FailureCount(policy.free_attempts, t0)  # refusals are not counted
        later = t0 + policy.delay(policy.free_attempts)
        granted = [
            (await s.login_failures.reserve("user:race", later, policy=policy, ttl=TTL)).granted
            for _ in range(3)
        ]
        assert granted == [True, False, False]


async def test_a_refused_reservation_reports_the_counter(db: Database) -> None:
    policy = BackoffPolicy(free_attempts=1, base_delay=60, max_delay=60)
    t0 = now()
    async with db.transaction() as s:
        assert (await s.login_failures.reserve("k", t0, policy=policy, ttl=TTL)).granted
        refused = await s.login_failures.reserve("k", t0 + 1, policy=policy, ttl=TTL)
        assert refused.granted is False
        assert refused.record == FailureCount(1, t0)


async def test_parallel_releases_give_back_and_never_go_below_zero(db: Database) -> None:
    policy = BackoffPolicy(free_attempts=N, base_delay=60, max_delay=60)
    t0 = now()
    assert await reserve_many(db, "k", t0, policy) == N

    async def release() -> None:
        async with db.transaction() as s:
            await s.login_failures.release("k")

    await asyncio.gather(*(release() for _ in range(N + 5)))
    async with db.transaction() as s:
        record = await s.login_failures.get("k")
        assert record is not None
        assert record.count == 0
        await s.login_failures.release("nothing")
        assert await s.login_failures.get("nothing") is None


async def test_clear_forgets_the_counter_under_parallel_reservations(db: Database) -> None:
    policy = BackoffPolicy(free_attempts=2, base_delay=60, max_delay=60)
    t0 = now()
    assert await reserve_many(db, "k", t0, policy) == 2
    async with db.transaction() as s:
        await s.login_failures.clear("k")
        await s.login_failures.clear("nothing")
        assert await s.login_failures.get("k") is None
    assert await reserve_many(db, "k", t0, policy) == 2


async def test_counters_are_per_key(db: Database) -> None:
    policy = BackoffPolicy(free_attempts=1, base_delay=60, max_delay=60)
    t0 = now()
    async with db.transaction() as s:
        assert (await s.login_failures.reserve("a", t0, policy=policy, ttl=TTL)).granted
        assert (await s.login_failures.reserve("b", t0, policy=policy, ttl=TTL)).granted
        assert not (await s.login_failures.reserve("a", t0, policy=policy, ttl=TTL)).granted


async def test_a_counter_is_forgotten_after_its_ttl(db: Database) -> None:
    policy = BackoffPolicy(free_attempts=1, base_delay=3600, max_delay=3600)
    t0 = now()
    async with db.transaction() as s:
        assert (await s.login_failures.reserve("k", t0, policy=policy, ttl=1)).granted
    await asyncio.sleep(2.1)  # past the TTL on every clock (Redis expires on its own)
    t1 = now()
    async with db.transaction() as s:
        again = await s.login_failures.reserve("k", t1, policy=policy, ttl=TTL)
        assert again.granted
        assert again.record == FailureCount(1, t1)


async def test_an_attempt_stamped_a_second_earlier_is_admitted_below_the_free_attempts(
    db: Database,
) -> None:
    """Found by the logins benchmark on PostgreSQL: a request reads the clock, then waits on the
    counter's row lock while another one, a second later, counts its attempt. Below the free
    attempts that older stamp must not matter (no back-off applies), and ``last_at`` never goes
    back in time."""
    policy = BackoffPolicy(free_attempts=50, base_delay=1, max_delay=60)
    t0 = now()
    async with db.transaction() as s:
        assert (await s.login_failures.reserve("ip:nat", t0 + 1, policy=policy, ttl=TTL)).granted
        late = await s.login_failures.reserve("ip:nat", t0, policy=policy, ttl=TTL)
        assert late.granted
        assert await s.login_failures.get("ip:nat") == FailureCount(2, t0 + 1)
