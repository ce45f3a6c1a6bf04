"""Redis for short-lived state (issue 8): codes, login transactions, assertion jtis and the JWT
deny-list live in Redis; atomic code consumption across concurrent requests; Redis down gives
503 and the server recovers when it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from tests.server.harness import ServerEnv
from tests.support.clients import resource_server
from tests.support.redis_server import PrivateRedis
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

pytestmark = pytest.mark.redis


async def keys(env: ServerEnv, pattern: str) -> list[str]:
    assert env.settings.redis_url is not None
    client = aioredis.Redis.from_url(env.settings.redis_url.get_secret_value())
    try:
        return [k.decode() async for k in client.scan_iter(f"{env.settings.redis_prefix}{pattern}")]
    finally:
        await client.aclose()


async def test_code_flow_keeps_codes_and_transactions_in_redis(redis_env: ServerEnv) -> None:
    env = redis_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    assert await keys(env, "ix:*")  # the login transaction
    final = await env.login(ua, flow.response)
    code = final.headers["location"].split("code=")[1].split("&")[0]
    assert await keys(env, "code:*")
    async with env.admin.db.engine.connect() as conn:
        in_sql = (await conn.execute(text("SELECT count(*) FROM ts_authorization_codes"))).scalar()
        ix_sql = (await conn.execute(text("SELECT count(*) FROM ts_interactions"))).scalar()
    assert in_sql == 0
    assert ix_sql == 0
    response = await env.redeem(client, code, flow.verifier)
    assert response.status_code == 200, response.text
    replay = await env.redeem(client, code, flow.verifier)
    assert replay.json()["error"] == "invalid_grant"
    assert await env.introspect(client, response.json()["access_token"]) == {"active": False}


async def test_concurrent_redemptions_through_redis_give_one_token(redis_env: ServerEnv) -> None:
    env = redis_env
    client = await env.client()
    await env.user()
    flow = await env.authorize(env.browser(), client)
    results = await asyncio.gather(
        *(env.redeem(client, flow.code, flow.verifier) for _ in range(50))
    )
    assert sorted(r.status_code for r in results).count(200) == 1


async def test_deny_list_in_redis(redis_env: ServerEnv) -> None:
    env = redis_env
    rs = await resource_server(env)
    token = (await env.token(rs, {"grant_type": "client_credentials"})).json()["access_token"]
    assert (await env.revoke(rs, token)).status_code == 200
    assert await keys(env, "deny:*")
    assert await env.introspect(rs, token) == {"active": False}


# -- a private redis-server that the test can stop and start -----------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_down_gives_503_and_recovers(
    private_redis: PrivateRedis, database_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=database_url,
        redis_url=private_redis.url,  # type: ignore[arg-type]
        redis_timeout=0.5,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        client = await env.client()
        await env.user()
        flow = await env.authorize(env.browser(), client)
        private_redis.stop()
        down = await env.redeem(client, flow.code, flow.verifier)
        assert down.status_code == 503
        assert down.json()["error"] == "temporarily_unavailable"
        assert down.headers["retry-after"]
        page = await env.start_authorize(env.browser(), client)
        assert page.response.status_code == 503
        assert "Traceback" not in page.response.text
        private_redis.start()  # an empty Redis: the code is gone, nothing half-written
        lost = await env.redeem(client, flow.code, flow.verifier)
        assert lost.status_code == 400
        again = await env.authorize(env.browser(), client)
        ok = await env.redeem(client, again.code, again.verifier)
        assert ok.status_code == 200, ok.text


async def test_login_failures_are_counted_in_redis(redis_env: ServerEnv) -> None:
    from tests.support.password_login import attempt
    from tokensmith.core.throttle import ACCOUNT

    env = redis_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    for _ in range(ACCOUNT.free_attempts):
        assert (await attempt(env, ua, client, "alice", "wrong")).status_code == 401
    assert await keys(env, "fail:*")
    assert (await attempt(env, ua, client, "alice", "wrong")).status_code == 429


async def test_token_rate_limit_is_shared_through_redis(
    redis_settings: Settings, clock: FakeClock
) -> None:
    from tests.support.clients import machine

    settings = redis_settings.model_copy(update={"token_rate_limit": "2/minute"})
    async with (
        ServerEnv.start(settings, clock) as first,
        ServerEnv.start(settings, clock) as second,
    ):
        client = await machine(first)
        assert (await first.token(client, {"grant_type": "client_credentials"})).status_code == 200
        assert (await second.token(client, {"grant_type": "client_credentials"})).status_code == 200
        third = await first.token(client, {"grant_type": "client_credentials"})
        assert third.status_code == 429


async def test_admin_changes_reach_running_servers_at_once(
    redis_settings: Settings, clock: FakeClock
) -> None:
    """Through the Redis invalidation channel, not after client_cache_ttl."""
    from tests.support.clients import machine

    settings = redis_settings.model_copy(update={"client_cache_ttl": 3600.0})
    async with ServerEnv.start(settings, clock) as env:
        client = await machine(env)
        assert (await env.token(client, {"grant_type": "client_credentials"})).status_code == 200
        await env.admin.rotate_client_secret(client.client.client_id)
        for _ in range(200):  # the message arrives asynchronously: bounded wait
            response = await env.token(client, {"grant_type": "client_credentials"})
            if response.status_code == 401:
                break
            await asyncio.sleep(0.01)
        assert response.status_code == 401
