"""Refresh tokens: rotation, reuse detection revoking the family, client binding, lifetimes,
narrowing scope, concurrency (issue 3; RFC 9700 §4.14.2)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.server.harness import ServerEnv
from tests.support.clients import refresh, start


async def test_code_exchange_issues_a_refresh_token_when_allowed(server_env: ServerEnv) -> None:
    _, body = await start(server_env)
    assert str(body["refresh_token"]).startswith("ts_rt_")


async def test_no_refresh_token_without_the_grant(server_env: ServerEnv) -> None:
    _, body = await start(server_env, grant_types=["authorization_code"])
    assert "refresh_token" not in body


async def test_refresh_rotates_the_token(server_env: ServerEnv) -> None:
    client, body = await start(server_env)
    first = str(body["refresh_token"])
    response = await refresh(server_env, client, first)
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["refresh_token"] != first
    assert new["scope"] == "docs:read docs:write"
    claims = await server_env.decode_access_token(new["access_token"])
    assert claims["scope"] == "docs:read docs:write"


async def test_refresh_token_reuse_revokes_the_family(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    first = str(body["refresh_token"])
    first_access = str(body["access_token"])
    rotated = (await refresh(env, client, first)).json()
    assert (await env.introspect(client, rotated["access_token"]))["active"] is True
    replay = await refresh(env, client, first)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # the newest refresh token and every access token of the family are dead now
    newest = await refresh(env, client, rotated["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    assert await env.introspect(client, rotated["access_token"]) == {"active": False}
    assert await env.introspect(client, first_access) == {"active": False}
    assert await env.introspect(client, rotated["refresh_token"]) == {"active": False}


async def test_refresh_token_is_bound_to_its_client(server_env: ServerEnv) -> None:
    env = server_env
    _client, body = await start(env)
    other = await env.client(name="Other", grant_types=["authorization_code", "refresh_token"])
    response = await refresh(env, other, str(body["refresh_token"]))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_scope_may_only_narrow(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env, scopes=["docs:read", "docs:write"])
    narrowed = await refresh(env, client, str(body["refresh_token"]), scope="docs:read")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "docs:read"
    claims = await env.decode_access_token(narrowed.json()["access_token"])
    assert claims["scope"] == "docs:read"
    # the new refresh token still carries the grant's full scope (RFC 6749 §6)
    again = await refresh(env, client, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "docs:read docs:write"


async def test_refresh_scope_cannot_widen(server_env: ServerEnv) -> None:
    env = server_env
    await env.api()
    client = await env.client(
        grant_types=["authorization_code", "refresh_token"], scopes=["docs:read", "docs:write"]
    )
    await env.user()
    flow = await env.authorize(env.browser(), client, scope="docs:read")
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    wider = await refresh(env, client, body["refresh_token"], scope="docs:read docs:write")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    # a refused widening does not burn the token
    assert (await refresh(env, client, body["refresh_token"])).status_code == 200


async def test_refresh_token_idle_lifetime(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env, refresh_token_idle_ttl=600)
    env.clock.advance(601)
    response = await refresh(env, client, str(body["refresh_token"]))
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_token_absolute_lifetime_survives_rotation(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env, refresh_token_idle_ttl=600, refresh_token_absolute_ttl=1000)
    token = str(body["refresh_token"])
    for _ in range(2):
        env.clock.advance(400)
        response = await refresh(env, client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
    env.clock.advance(400)  # 1200 s after the grant: past the absolute lifetime
    assert (await refresh(env, client, token)).json()["error"] == "invalid_grant"


async def test_refresh_tokens_are_stored_as_digests(server_env: ServerEnv) -> None:
    env = server_env
    _, body = await start(env)
    async with env.admin.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT digest FROM ts_refresh_tokens"))).scalars().all()
    assert rows
    assert all(len(r) == 64 and r != body["refresh_token"] for r in rows)


async def test_disabled_user_cannot_refresh(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    await env.admin.set_disabled("alice", True)
    assert (await refresh(env, client, str(body["refresh_token"]))).json()["error"] == (
        "invalid_grant"
    )


async def test_concurrent_refreshes_give_exactly_one_success(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    token = str(body["refresh_token"])
    responses = await asyncio.gather(*(refresh(env, client, token) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(s == 400 for s in statuses if s != 200)
    # concurrent reuse counts as reuse: the family is revoked, consistently
    winner = next(r for r in responses if r.status_code == 200).json()
    assert (await refresh(env, client, winner["refresh_token"])).status_code == 400
    async with env.admin.db.engine.connect() as conn:
        grants = (await conn.execute(text("SELECT revoked_at FROM ts_grants"))).scalars().all()
    assert len(grants) == 1
    assert grants[0] is not None
