"""Rate limits and login throttling (issue 8, issue 10): back-off per account and per address
with a fake clock, 429 with Retry-After at the token endpoint, no account enumeration."""

from __future__ import annotations

from tests.server.harness import PASSWORD, ServerEnv
from tests.support.clients import machine
from tests.support.password_login import attempt
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.core.throttle import ACCOUNT, ADDRESS, BackoffPolicy, FailureCount
from tokensmith.settings import Settings


def test_backoff_policy_doubles_and_caps() -> None:
    policy = BackoffPolicy(free_attempts=3, base_delay=2, max_delay=60)
    assert policy.locked_until(None) == 0
    assert policy.locked_until(FailureCount(2, 100)) == 0
    assert policy.locked_until(FailureCount(3, 100)) == 102
    assert policy.locked_until(FailureCount(4, 100)) == 104
    assert policy.locked_until(FailureCount(40, 100)) == 160


async def test_account_is_locked_with_backoff_after_failures(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    for _ in range(ACCOUNT.free_attempts):
        assert (await attempt(env, ua, client, "alice", "wrong password")).status_code == 401
    locked = await attempt(env, ua, client, "alice", PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == ACCOUNT.base_delay
    assert "Too many failed attempts" in locked.text
    env.clock.advance(ACCOUNT.base_delay)
    ok = await attempt(env, ua, client, "alice", PASSWORD)
    assert ok.status_code == 303
    # a success clears the account's counter
    assert (await attempt(env, ua, client, "alice", "wrong password")).status_code == 401


async def test_unknown_accounts_are_throttled_the_same_way(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    known, unknown = [], []
    for _ in range(ACCOUNT.free_attempts + 1):
        known.append((await attempt(env, ua, client, "alice", "wrong")).status_code)
        unknown.append((await attempt(env, ua, client, "nobody", "wrong")).status_code)
    assert known == unknown == [401] * ACCOUNT.free_attempts + [429]


async def test_lockout_of_one_account_does_not_lock_another(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    await env.user("bob")
    ua = env.browser()
    for _ in range(ACCOUNT.free_attempts):
        await attempt(env, ua, client, "alice", "wrong")
    assert (await attempt(env, ua, client, "bob", PASSWORD)).status_code == 303


async def test_token_endpoint_rate_limit_per_client(database_url: str, clock: FakeClock) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=database_url,
        token_rate_limit="3/minute",
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        client = await machine(env)
        other = await machine(env, name="Other worker")
        statuses = [
            (await env.token(client, {"grant_type": "client_credentials"})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        limited = await env.token(client, {"grant_type": "client_credentials"})
        assert limited.status_code == 429
        assert limited.json()["error"] == "slow_down"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await env.token(other, {"grant_type": "client_credentials"})).status_code == 200


async def test_many_accounts_from_one_address_are_throttled(server_env: ServerEnv) -> None:
    """Guessing across accounts (password spraying) hits the per-address counter."""
    env = server_env
    client = await env.client()
    ua = env.browser()
    statuses = [
        (await attempt(env, ua, client, f"user{i}", "wrong")).status_code
        for i in range(ADDRESS.free_attempts + 1)
    ]
    assert statuses[:-1] == [401] * ADDRESS.free_attempts
    assert statuses[-1] == 429


async def test_password_hash_is_upgraded_at_login_when_the_cost_changed(
    server_env: ServerEnv,
) -> None:
    from sqlalchemy import text

    from tokensmith.admin import Admin

    env = server_env
    client = await env.client()
    stronger = env.settings.model_copy(update={"password_hash_time_cost": 2})
    async with Admin(stronger, clock=env.clock) as admin:
        await admin.create_user(username="alice", password=PASSWORD, email="a@example.com")

    async def stored() -> str:
        async with env.admin.db.engine.connect() as conn:
            return str((await conn.execute(text("SELECT password_hash FROM ts_users"))).scalar())

    assert ",t=2," in await stored()
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 303
    assert ",t=1," in await stored()  # the server's current cost
    assert (await attempt(env, env.browser(), client, "alice", PASSWORD)).status_code == 303


async def test_account_lock_follows_the_account_not_the_typed_name(server_env: ServerEnv) -> None:
    """Round two, finding 7: after failures as ``bob``, ``bob@example.com`` got five fresh
    attempts. The counter is the account's (its user id), whichever name was typed."""
    env = server_env
    client = await env.client()
    await env.user("bob")
    ua = env.browser()
    for name in ("bob", "bob@example.com", "BOB", "Bob@Example.com", "bob"):
        assert (await attempt(env, ua, client, name, "wrong")).status_code == 401
    for name in ("bob", "bob@example.com", "\uff42\uff4f\uff42"):  # fullwidth b o b
        locked = await attempt(env, ua, client, name, PASSWORD)
        assert locked.status_code == 429, name
    env.clock.advance(ACCOUNT.delay(ACCOUNT.free_attempts))
    assert (await attempt(env, ua, client, "bob@example.com", PASSWORD)).status_code == 303
    # the success cleared the account's counter, under every name
    for _ in range(ACCOUNT.free_attempts):
        assert (await attempt(env, ua, client, "bob", "wrong")).status_code == 401


async def test_unknown_logins_are_counted_by_their_normalised_form(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    ua = env.browser()
    for name in ("Nobody", "NOBODY", "nobody", " nobody ", "\uff4eobody"):
        assert (await attempt(env, ua, client, name, "wrong")).status_code == 401
    assert (await attempt(env, ua, client, "nobody", "wrong")).status_code == 429
