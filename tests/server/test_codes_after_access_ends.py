"""Red team: an authorization code issued before an event that ends a user's access (a password
set by the operator, the account disabled or deleted, its sessions ended, its grants revoked, its
second factor reset) gets no tokens afterwards; one issued after the event does. Through the
admin service and the token endpoint, on SQLite, PostgreSQL and PostgreSQL + Redis (where the
codes live in Redis). The self-service reset and the account page's forms are in
``test_self_service`` and ``test_account_security``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.server.harness import PASSWORD, Flow, ServerEnv
from tests.support.clients import code_refused, start
from tokensmith.admin import Admin
from tokensmith.core.clock import FakeClock
from tokensmith.core.registration import NewClient

NEW_PASSWORD = "a fresh passphrase for alice"


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def env(
    request: pytest.FixtureRequest, database_url: str, clock: FakeClock
) -> AsyncIterator[ServerEnv]:
    if request.param == "redis" and not database_url.startswith("postgresql"):
        pytest.skip("Redis is combined with PostgreSQL")
    base = request.getfixturevalue("redis_settings" if request.param == "redis" else "settings")
    async with ServerEnv.start(base, clock) as started:
        yield started


async def pending_code(env: ServerEnv, client: NewClient, password: str = PASSWORD) -> Flow:
    """A code issued to alice (signing in anew), not yet redeemed."""
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    final = await env.login(ua, flow.response, password=password)
    done = Flow(final, flow.params, flow.verifier)
    assert done.code
    return done


EVENTS: dict[str, Callable[[Admin], Awaitable[object]]] = {
    "users revoke": lambda admin: admin.revoke_user("alice"),
    "users sessions --end-all": lambda admin: admin.end_sessions("alice"),
    "users grants --revoke-all": lambda admin: admin.revoke_grants("alice"),
    "users mfa-reset": lambda admin: admin.reset_mfa("alice"),
    "users set-password": lambda admin: admin.set_password("alice", NEW_PASSWORD),
}


async def test_a_code_issued_before_the_operator_ends_a_users_access_gets_no_tokens(
    env: ServerEnv,
) -> None:
    client, _ = await start(env)
    password = PASSWORD
    for name, event in EVENTS.items():
        before = await pending_code(env, client, password)
        await event(env.admin)
        password = NEW_PASSWORD if name == "users set-password" else password
        assert await code_refused(env, client, before), name
        after = await pending_code(env, client, password)  # a new sign-in's code works
        assert (await env.redeem(client, after.code, after.verifier)).status_code == 200, name
    for name, final in (
        ("users disable", lambda: env.admin.set_disabled("alice", True)),
        ("users delete", lambda: env.admin.delete_user("alice")),
    ):
        before = await pending_code(env, client, password)
        await final()
        assert await code_refused(env, client, before), name
        if name == "users disable":
            await env.admin.set_disabled("alice", False)  # enabled again: the code stays dead
            assert await code_refused(env, client, before), name


async def test_a_code_of_another_user_survives_their_neighbours_event(env: ServerEnv) -> None:
    """The stamp is per user: ending alice's access leaves bob's outstanding code alone."""
    client, _ = await start(env)
    await env.user("bob")
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    final = await env.login(ua, flow.response, username="bob")
    bobs = Flow(final, flow.params, flow.verifier)
    await env.admin.revoke_user("alice")
    assert (await env.redeem(client, bobs.code, bobs.verifier)).status_code == 200
