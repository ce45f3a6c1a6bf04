"""Passwords are hashed off the event loop, with no transaction held (round-two review, finding
6): argon2 ran on the loop inside the login transaction, on SQLite holding the one connection
every request shares, so 20 logins stalled every other request for seconds.

The mechanism, asserted: verification (and re-hashing) runs on the runtime's worker pool, not
on the loop's thread; while a verification is held up, no connection is checked out for the
login and other requests, writes included, are served; the pool runs at most
``password_hash_workers`` hashes at once, and admits at most ``password_hash_queue`` more
waiting for them: one more login is refused at once (503, ``Retry-After``), writing nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.server.harness import PASSWORD, ServerEnv, hidden_fields
from tests.support.audit import events
from tests.support.clients import machine
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.admin import Admin
from tokensmith.core import passwords
from tokensmith.core.clock import FakeClock
from tokensmith.core.login import account_key
from tokensmith.core.throttle import FailureCount
from tokensmith.server.runtime import Runtime, hash_limit, hash_workers
from tokensmith.settings import Settings

BLOCKING = "held up in the pool"
"""A password whose verification the spy holds until the test releases it."""


class HashSpy:
    """Wraps argon2's verify and hash: records the thread of each call, and holds a
    verification of ``BLOCKING`` until ``release`` (at most ``hold`` seconds, so that a
    verification on the event loop fails the test instead of hanging it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, hold: float = 10.0) -> None:
        self.threads: list[tuple[str, str]] = []
        self.entered = threading.Semaphore(0)
        self.released = threading.Event()
        self.timed_out = False
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        verify, hash_ = passwords._Argon2.verify, passwords._Argon2.hash

        def spy_verify(hasher: Any, encoded: str, password: str) -> bool:
            self.threads.append(("verify", threading.current_thread().name))
            if password == BLOCKING:
                with self._lock:
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                self.entered.release()
                if not self.released.wait(hold):
                    self.timed_out = True
                with self._lock:
                    self.active -= 1
            result: bool = verify(hasher, encoded, password)
            return result

        def spy_hash(hasher: Any, password: str, **kwargs: Any) -> str:
            self.threads.append(("hash", threading.current_thread().name))
            result: str = hash_(hasher, password, **kwargs)
            return result

        monkeypatch.setattr(passwords._Argon2, "verify", spy_verify)
        monkeypatch.setattr(passwords._Argon2, "hash", spy_hash)

    async def wait_entered(self, count: int = 1) -> None:
        for _ in range(count):
            assert await asyncio.to_thread(self.entered.acquire, True, 10.0), "never verified"


async def login_form(env: ServerEnv, client: Any) -> tuple[httpx.AsyncClient, dict[str, str]]:
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    page = await ua.get(flow.location)
    assert page.status_code == 200, page.text
    return ua, hidden_fields(page.text)


async def submit(
    ua: httpx.AsyncClient, form: dict[str, str], username: str, password: str
) -> httpx.Response:
    return await ua.post("/login", data={**form, "username": username, "password": password})


async def held_logins(
    env: ServerEnv, client: Any, monkeypatch: pytest.MonkeyPatch, count: int
) -> tuple[HashSpy, list[asyncio.Task[httpx.Response]]]:
    """``count`` logins under way, each verification held by the spy (``BLOCKING``)."""
    forms = [await login_form(env, client) for _ in range(count)]
    spy = HashSpy(monkeypatch)
    return spy, [
        asyncio.create_task(submit(ua, form, f"user{i}", BLOCKING))
        for i, (ua, form) in enumerate(forms)
    ]


def runtime_of(env: ServerEnv) -> Runtime:
    rt: Runtime = env.app.state.runtime
    return rt


async def test_passwords_are_verified_and_rehashed_on_the_pool_not_the_loop(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server_env
    client = await env.client(first_party=True)
    stronger = env.settings.model_copy(update={"password_hash_time_cost": 2})
    async with Admin(stronger, clock=env.clock) as admin:  # an outdated hash: re-hashed at login
        await admin.create_user(username="alice", password=PASSWORD, email="a@example.com")
    spy = HashSpy(monkeypatch)
    ua, form = await login_form(env, client)
    assert (await submit(ua, form, "alice", PASSWORD)).status_code == 303
    ua, form = await login_form(env, client)
    assert (await submit(ua, form, "nobody", "wrong password")).status_code == 401  # dummy
    loop_thread = threading.current_thread().name
    assert [kind for kind, _ in spy.threads] == ["verify", "hash", "verify"]
    for _, thread in spy.threads:
        assert thread != loop_thread
        assert thread.startswith("tokensmith-hash"), thread


async def test_no_transaction_is_held_while_a_password_is_verified(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While alice's verification is held up in the pool, the login holds no connection, and
    a client_credentials request and a new authorization request (a write) are served; on
    SQLite, whose one connection all requests share, they would otherwise wait for it."""
    env = server_env
    client = await env.client(first_party=True)
    worker = await machine(env)
    await env.user()
    rt = runtime_of(env)
    ua, form = await login_form(env, client)
    spy = HashSpy(monkeypatch, hold=10.0)
    login = asyncio.create_task(submit(ua, form, "alice", BLOCKING))
    try:
        await spy.wait_entered()
        # (the audit writer may be writing at this instant: look for a moment with none)
        pool: Any = rt.db.engine.pool
        for _ in range(40):
            if pool.checkedout() == 0:
                break
            await asyncio.sleep(0.05)
        assert pool.checkedout() == 0
        token = await asyncio.wait_for(env.token(worker, {"grant_type": "client_credentials"}), 5)
        assert token.status_code == 200, token.text
        other = env.browser()
        started = await asyncio.wait_for(env.start_authorize(other, client), 5)
        assert started.response.status_code == 302
        assert not spy.timed_out
    finally:
        spy.released.set()
        response = await login
    assert not spy.timed_out  # it was held up in the pool, not on the loop
    assert response.status_code == 401


@pytest.fixture
async def two_workers(sqlite_url: str, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    settings = Settings(
        issuer=ISSUER,
        database_url=sqlite_url,
        password_hash_workers=2,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        yield env


async def test_the_pool_runs_at_most_password_hash_workers_hashes(
    two_workers: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = two_workers
    client = await env.client(first_party=True)
    spy, logins = await held_logins(env, client, monkeypatch, 6)
    try:
        await spy.wait_entered(2)
        await asyncio.sleep(0.5)  # time for more to start, if the pool let them
        assert spy.active == 2
    finally:
        spy.released.set()
        responses = await asyncio.gather(*logins)
    assert [r.status_code for r in responses] == [401] * 6
    assert spy.max_active == 2
    assert len(spy.threads) == 6


@pytest.mark.parametrize("change", ["disabled", "password changed", "access ended"])
async def test_an_account_changed_during_verification_does_not_sign_in(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The password is checked outside any transaction, so the account may change meanwhile:
    the login reads it again before concluding, and a disabled account or a replaced password
    (an operator reacting to a compromise) is not signed in with what was just checked; nor
    is an account whose access was ended meanwhile (``users revoke``: its security stamp,
    read with the account, was renewed), which is told to sign in again."""
    env = server_env
    client = await env.client(first_party=True)
    await env.admin.create_user(username="alice", password=BLOCKING, email="a@example.com")
    ua, form = await login_form(env, client)
    spy = HashSpy(monkeypatch)
    login = asyncio.create_task(submit(ua, form, "alice", BLOCKING))
    try:
        await spy.wait_entered()
        if change == "disabled":
            await env.admin.set_disabled("alice", True)
        elif change == "access ended":
            await env.admin.revoke_user("alice")
        else:
            await env.admin.set_password("alice", "a brand new password")
    finally:
        spy.released.set()
        response = await login
    assert not spy.timed_out
    assert response.status_code == 401
    assert "session" not in response.headers.get("set-cookie", "")
    assert ("changed while you were signing in" in response.text) == (change == "access ended")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities: Linux")
async def test_hashing_threads_run_below_the_event_loop_priority(server_env: ServerEnv) -> None:
    """The logins benchmark saw 20 parallel logins starve token requests although hashing was
    off the loop: argon2's threads took the CPU from the loop thread. The pool's threads run
    ``password_hash_nice`` levels lower, so the loop wins the CPU whenever both want it."""
    rt = runtime_of(server_env)

    def own_priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_priority = own_priority()
    hashing_priority = await asyncio.wrap_future(rt.hashing.submit(own_priority))
    assert server_env.settings.password_hash_nice == 19
    assert hashing_priority == 19  # the lowest: nice values stop at 19
    assert own_priority() == loop_priority  # the loop's own thread is untouched


async def test_the_pool_leaves_a_cpu_to_the_event_loop(server_env: ServerEnv) -> None:
    """Unset, ``password_hash_workers`` is the CPUs the server may use minus one (at least 1):
    four hashes at once on the loop's only CPU (the pool's old default) were no faster than one
    and quadrupled the threads the loop shared its CPU with (the logins benchmark)."""
    assert server_env.settings.password_hash_workers is None
    pool = runtime_of(server_env).hashing
    assert pool._max_workers == max(1, len(os.sched_getaffinity(0)) - 1)
    assert hash_workers(server_env.settings, cpus=1) == 1
    assert hash_workers(server_env.settings, cpus=2) == 1
    assert hash_workers(server_env.settings, cpus=8) == 7
    chosen = server_env.settings.model_copy(update={"password_hash_workers": 3})
    assert hash_workers(chosen, cpus=1) == 3


@pytest.fixture
async def small_queue(settings: Settings, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """One hashing thread and two places in its queue: three password operations at once."""
    small = settings.model_copy(update={"password_hash_workers": 1, "password_hash_queue": 2})
    async with ServerEnv.start(small, clock) as env:
        yield env


async def pending_becomes(env: ServerEnv, count: int) -> None:
    hasher = runtime_of(env).server.passwords
    for _ in range(200):
        if hasher.pending == count:
            return
        await asyncio.sleep(0.02)
    assert hasher.pending == count


async def test_a_login_beyond_the_pools_queue_is_refused_at_once_writing_nothing(
    small_queue: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three logins held (one hashing, two waiting): the fourth gets a 503 page with
    ``Retry-After`` and its username kept, at once; it counted on no throttle (the account's
    and the address's counters hold only the three), was audited as ``login.busy`` and in
    ``/metrics``; once the queue drains, logins are served again."""
    env = small_queue
    client = await env.client(first_party=True)
    await env.user()
    assert runtime_of(env).server.passwords._limit == 3  # 1 worker + password_hash_queue 2
    ua, form = await login_form(env, client)  # the fourth login's
    spy, held = await held_logins(env, client, monkeypatch, 3)
    try:
        await spy.wait_entered()
        await pending_becomes(env, 3)
        refused = await asyncio.wait_for(submit(ua, form, "refused", "some password"), 5)
        assert not spy.timed_out
    finally:
        spy.released.set()
        responses = await asyncio.gather(*held)
    assert [r.status_code for r in responses] == [401] * 3
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert "Too many people are signing in right now" in refused.text
    assert 'value="refused"' in refused.text  # the form kept (not the password)
    assert "some password" not in refused.text
    await pending_becomes(env, 0)
    async with runtime_of(env).db.transaction() as stores:
        failures = stores.login_failures
        assert await failures.get(account_key("refused", None)) is None
        assert await failures.get(account_key("user0", None)) is not None
        address = await failures.get("ip:127.0.0.1")
    assert isinstance(address, FailureCount)
    assert address.count == 3
    audited = [event for event, _, _ in await events(env)]
    assert audited.count("login.busy") == 1
    assert audited.count("login.failed") == 3
    metrics = (await env.http.get("/metrics")).text
    assert "tokensmith_password_operations_refused_total 1.0" in metrics
    assert "tokensmith_password_operations_pending 0.0" in metrics
    ua, form = await login_form(env, client)
    assert (await submit(ua, form, "alice", PASSWORD)).status_code == 303  # served again


async def test_a_cancelled_logins_hash_keeps_its_place_until_it_ends(
    small_queue: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that stops waiting (client gone) does not stop its hash: the job keeps its
    thread, so it keeps its place until it finishes; a job cancelled before it started gives
    its place back at once."""
    env = small_queue
    client = await env.client(first_party=True)
    spy, logins = await held_logins(env, client, monkeypatch, 2)
    try:
        await spy.wait_entered()  # the first hashes, the second waits in the queue
        await pending_becomes(env, 2)
        for login in logins:
            login.cancel()
        await asyncio.gather(*logins, return_exceptions=True)
        await pending_becomes(env, 1)  # the running hash still counts, the queued one not
        await asyncio.sleep(0.2)
        assert runtime_of(env).server.passwords.pending == 1
    finally:
        spy.released.set()
    await pending_becomes(env, 0)  # given back when the hash ended


async def test_the_queue_bound_is_read_from_settings(server_env: ServerEnv) -> None:
    settings = server_env.settings
    assert settings.password_hash_queue == 32
    assert hash_limit(settings, 1) == 33
    assert hash_limit(settings.model_copy(update={"password_hash_queue": 0}), 4) is None
    assert runtime_of(server_env).server.passwords._limit == 32 + hash_workers(settings)


async def test_a_password_form_refused_by_a_full_pool_counts_on_no_throttle(
    small_queue: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed-in user's form that checks the current password (here a password change)
    while the pool's queue is full gets the 503 page and, like a refused login, counts on no
    throttle: its reserved attempt must not stay a failure, or an unauthenticated flood of
    logins turns the user's own retries into a lockout of her account (at the login page too)."""
    from tests.support.account_pages import change, signed_in
    from tests.support.clients import start
    from tokensmith.core.throttle import ACCOUNT

    env = small_queue
    client, _ = await start(env)  # alice
    ua = await signed_in(env, client)
    spy, held = await held_logins(env, client, monkeypatch, 3)
    try:
        await spy.wait_entered()
        await pending_becomes(env, 3)
        for _ in range(ACCOUNT.free_attempts + 1):
            busy = await asyncio.wait_for(change(ua, PASSWORD, "a brand new passphrase"), 5)
            assert busy.status_code == 503, busy.status_code  # not 429 after five
            assert busy.headers["retry-after"] == "5"
    finally:
        spy.released.set()
        await asyncio.gather(*held)
    await pending_becomes(env, 0)
    login_ua, form = await login_form(env, client)
    answer = await submit(login_ua, form, "alice", PASSWORD)
    assert answer.status_code == 303, answer.text  # not 429: alice is not locked out
