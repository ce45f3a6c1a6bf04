"""The same request 30-fold in parallel, for every security counter and single-use artefact
(checklist W-23, V-27 and the round-two review, finding 4), on SQLite, PostgreSQL and PostgreSQL
with Redis for short-lived state.

The authorization server runs in-process; the 30 requests are sent at once with
``asyncio.gather`` and really interleave: every await in a request (a database or Redis round
trip, the password check on the worker pool) lets the others run, and on PostgreSQL each has its
own connection. What must hold:

- login: at most the back-off's free attempts of passwords are checked, per account and per
  address, however many arrive at once; the right password after the limit does not sign in;
- a private_key_jwt assertion's ``jti``, an authorization code and a refresh token are each
  used exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.security.helpers import login_page
from tests.server.harness import PASSWORD, REDIRECT, ServerEnv, assert_oauth_error, basic
from tests.server.harness import hidden_fields as fields_of
from tests.support.clients import refresh
from tests.support.clients import start as refresh_start
from tests.support.code_flow import ready
from tests.support.private_key_jwt import KeyPair, assertion, pkjwt_client, post
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core import passwords
from tokensmith.core.clock import FakeClock
from tokensmith.core.throttle import ACCOUNT, ADDRESS, FAILURE_MEMORY, BackoffPolicy
from tokensmith.server.runtime import Runtime
from tokensmith.settings import Settings

N = 30

pytestmark = pytest.mark.parametrize(
    ("database_url", "with_redis"),
    [
        ("sqlite", False),
        pytest.param("postgres", False, marks=pytest.mark.postgres),
        pytest.param("postgres", True, marks=[pytest.mark.postgres, pytest.mark.redis]),
    ],
    ids=["sqlite", "postgres", "postgres+redis"],
    indirect=["database_url"],
)


@pytest.fixture
async def cenv(
    request: pytest.FixtureRequest, database_url: str, with_redis: bool, clock: FakeClock
) -> AsyncIterator[ServerEnv]:
    if with_redis:
        settings: Settings = request.getfixturevalue("redis_settings")
    else:
        settings = Settings(
            issuer=ISSUER,
            database_url=database_url,
            **FAST_HASH,  # type: ignore[arg-type]
        )
    async with ServerEnv.start(settings, clock) as env:
        assert (env.settings.redis_url is not None) == with_redis
        yield env


def runtime_of(env: ServerEnv) -> Runtime:
    rt: Runtime = env.app.state.runtime
    return rt


class VerificationSpy:
    """Counts the argon2 verifications (on the worker pool's threads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        original = passwords._Argon2.verify

        def verify(hasher: Any, hash_: str, password: str) -> bool:
            with self._lock:
                self.calls += 1
            result: bool = original(hasher, hash_, password)
            return result

        monkeypatch.setattr(passwords._Argon2, "verify", verify)


async def login_forms(env: ServerEnv, client: Any, count: int) -> list[tuple[Any, dict[str, str]]]:
    """``count`` browsers, each on its own login page (so no CSRF or transaction is shared)."""
    out = []
    for _ in range(count):
        ua = env.browser()
        out.append((ua, fields_of((await login_page(env, ua, client)).text)))
    return out


async def post_logins(
    forms: list[tuple[Any, dict[str, str]]], credentials: list[tuple[str, str]]
) -> list[httpx.Response]:
    return await asyncio.gather(
        *(
            ua.post("/login", data={**form, "username": user, "password": password})
            for (ua, form), (user, password) in zip(forms, credentials, strict=True)
        )
    )


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in responses:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


# -- the counters' store: one atomic reservation --------------------------------------------


@pytest.mark.parametrize(
    "policy", [ACCOUNT, BackoffPolicy(free_attempts=1, base_delay=60, max_delay=60)]
)
async def test_parallel_reservations_grant_exactly_the_free_attempts(
    cenv: ServerEnv, policy: BackoffPolicy
) -> None:
    """30 reservations of one key at once, each in its own transaction (committed at once, as
    the login route does): exactly ``free_attempts`` are granted, on every backend."""
    db = runtime_of(cenv).db
    now = int(cenv.clock())

    async def reserve() -> bool:
        async with db.transaction() as stores:
            r = await stores.login_failures.reserve(
                "user:race", now, policy=policy, ttl=FAILURE_MEMORY
            )
            return r.granted

    granted = await asyncio.gather(*(reserve() for _ in range(N)))
    assert sum(granted) == policy.free_attempts
    async with db.transaction() as stores:
        record = await stores.login_failures.get("user:race")
        assert record is not None
        assert record.count == policy.free_attempts  # refused attempts are not counted
        # after the back-off, exactly one more is admitted
        later = now + policy.delay(record.count)
        again = [
            (
                await stores.login_failures.reserve(
                    "user:race", later, policy=policy, ttl=FAILURE_MEMORY
                )
            ).granted
            for _ in range(3)
        ]
    assert again == [True, False, False]


# -- login failures per account and per address ---------------------------------------------


async def test_parallel_wrong_passwords_check_at_most_the_free_attempts(
    cenv: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 4: 30 parallel wrong passwords for one account checked 28 passwords. Now the
    attempt is reserved before its password is checked: 5 are checked, 25 refused unchecked,
    and the right password afterwards is refused too."""
    env = cenv
    client = await env.client(first_party=True)
    await env.user()
    forms = await login_forms(env, client, N)
    spy = VerificationSpy(monkeypatch)
    responses = await post_logins(forms, [("alice", f"wrong {i}") for i in range(N)])
    assert spy.calls == ACCOUNT.free_attempts
    assert statuses(responses) == {401: ACCOUNT.free_attempts, 429: N - ACCOUNT.free_attempts}
    ua, form = (await login_forms(env, client, 1))[0]
    right = await ua.post("/login", data={**form, "username": "alice", "password": PASSWORD})
    assert right.status_code == 429
    assert spy.calls == ACCOUNT.free_attempts  # refused without checking
    env.clock.advance(ACCOUNT.delay(ACCOUNT.free_attempts))  # a back-off, not a hard lock
    ua, form = (await login_forms(env, client, 1))[0]
    right = await ua.post("/login", data={**form, "username": "alice", "password": PASSWORD})
    assert right.status_code == 303


async def test_right_password_in_a_parallel_burst_signs_in_only_within_the_allowance(
    cenv: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's run: the right password as the 13th of 30 parallel attempts. Whatever
    the interleaving, at most 5 passwords are checked, so it signs in only if it was among
    them; and afterwards the account is locked (or cleared by that success)."""
    env = cenv
    client = await env.client(first_party=True)
    await env.user()
    forms = await login_forms(env, client, N)
    spy = VerificationSpy(monkeypatch)
    credentials = [("alice", "wrong")] * 12 + [("alice", PASSWORD)] + [("alice", "wrong")] * 17
    responses = await post_logins(forms, credentials)
    counts = statuses(responses)
    assert counts.get(303, 0) <= 1
    if counts.get(303, 0) == 0:
        assert spy.calls == ACCOUNT.free_attempts
        assert counts.get(429) == N - ACCOUNT.free_attempts
        assert counts.get(401, 0) == ACCOUNT.free_attempts
    else:
        # The right password was among the first five checked: its success cleared the
        # account's counter (whoever typed it knows the password), so attempts still in flight
        # may start a fresh allowance — never more than one more.
        assert ACCOUNT.free_attempts <= spy.calls <= 2 * ACCOUNT.free_attempts
        assert counts.get(401, 0) + 1 == spy.calls
        assert counts.get(429) == N - spy.calls


async def test_parallel_logins_from_one_address_check_at_most_its_free_attempts(
    cenv: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Password spraying at once: 30 parallel attempts on 30 different accounts from one
    address that has 5 attempts left: 5 are checked; alice's right password is then refused,
    without spending one of alice's attempts (the address is reserved first)."""
    env = cenv
    client = await env.client(first_party=True)
    alice = await env.user()
    rt = runtime_of(env)
    now = int(env.clock())
    async with rt.db.transaction() as stores:
        for _ in range(ADDRESS.free_attempts - 5):
            assert (
                await stores.login_failures.reserve(
                    "ip:127.0.0.1", now, policy=ADDRESS, ttl=FAILURE_MEMORY
                )
            ).granted
    forms = await login_forms(env, client, N)
    spy = VerificationSpy(monkeypatch)
    responses = await post_logins(forms, [(f"user{i}", "Winter2026!") for i in range(N)])
    assert spy.calls == 5
    assert statuses(responses) == {401: 5, 429: N - 5}
    ua, form = (await login_forms(env, client, 1))[0]
    right = await ua.post("/login", data={**form, "username": "alice", "password": PASSWORD})
    assert right.status_code == 429
    assert spy.calls == 5
    async with rt.db.transaction() as stores:
        assert await stores.login_failures.get("user:" + alice.id) is None


async def test_parallel_right_passwords_leave_no_counter_behind(cenv: ServerEnv) -> None:
    """Successes give their reservations back. A burst of right passwords for one account is
    still bounded by its free attempts (each reserves before any concludes), but nothing of it
    remains: the account's counter is cleared and the address's is back at zero."""
    env = cenv
    client = await env.client(first_party=True)
    user = await env.user()
    forms = await login_forms(env, client, 8)
    responses = await post_logins(forms, [("alice", PASSWORD)] * 8)
    counts = statuses(responses)
    assert counts.get(303, 0) >= ACCOUNT.free_attempts
    assert counts.get(303, 0) + counts.get(429, 0) == 8
    async with runtime_of(env).db.transaction() as stores:
        address = await stores.login_failures.get("ip:127.0.0.1")
        account = await stores.login_failures.get("user:" + user.id)
    assert address is None or address.count == 0
    assert account is None


# -- single-use artefacts ---------------------------------------------------------------------


async def test_parallel_private_key_jwt_assertion_is_used_once(cenv: ServerEnv) -> None:
    env = cenv
    keys = KeyPair()
    client = await pkjwt_client(env, keys)
    token = assertion(env, client, keys)
    responses = await asyncio.gather(*(post(env, token) for _ in range(N)))
    assert statuses(responses) == {200: 1, 401: N - 1}
    for r in responses:
        if r.status_code != 200:
            assert_oauth_error(r, "invalid_client", status=401)


async def test_parallel_code_redemptions_give_one_token(cenv: ServerEnv) -> None:
    env = cenv
    client, flow = await ready(env)
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    async with httpx.AsyncClient(
        transport=env.transport, base_url=env.settings.issuer, timeout=120
    ) as c:
        responses = await asyncio.gather(
            *(c.post("/token", data=form, headers=headers) for _ in range(N))
        )
    assert statuses(responses) == {200: 1, 400: N - 1}
    for r in responses:
        if r.status_code != 200:
            assert_oauth_error(r, "invalid_grant")
    assert await env.count("ts_grants") == 1
    # a replay revokes what the code issued: the one token is no longer active
    winner = next(r for r in responses if r.status_code == 200).json()
    assert await env.introspect(client, winner["access_token"]) == {"active": False}


async def test_parallel_refreshes_rotate_once(cenv: ServerEnv) -> None:
    env = cenv
    client, body = await refresh_start(env)
    token = str(body["refresh_token"])
    responses = await asyncio.gather(*(refresh(env, client, token) for _ in range(N)))
    assert statuses(responses) == {200: 1, 400: N - 1}
    for r in responses:
        if r.status_code != 200:
            assert_oauth_error(r, "invalid_grant")
    winner = next(r for r in responses if r.status_code == 200).json()
    # concurrent reuse is reuse: the family is revoked, the winner's new token too
    assert_oauth_error(await refresh(env, client, winner["refresh_token"]), "invalid_grant")
    async with env.admin.db.engine.connect() as conn:
        revoked = (await conn.execute(text("SELECT revoked_at FROM ts_grants"))).scalars().all()
    assert len(revoked) == 1
    assert revoked[0] is not None
