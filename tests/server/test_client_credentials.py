"""Client credentials (RFC 6749 §4.4), per issue 3."""

from __future__ import annotations

import asyncio

from tests.server.harness import API, ServerEnv
from tests.support.clients import machine


async def test_client_credentials_issues_a_jwt_for_the_client(server_env: ServerEnv) -> None:
    client = await machine(server_env)
    response = await server_env.token(client, {"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "docs:read"
    assert response.headers["cache-control"] == "no-store"
    claims = await server_env.decode_access_token(body["access_token"])
    assert claims["sub"] == client.client.client_id
    assert claims["client_id"] == client.client.client_id
    assert claims["aud"] == API
    assert "auth_time" not in claims


async def test_client_credentials_scope_outside_allowed_is_invalid_scope(
    server_env: ServerEnv,
) -> None:
    client = await machine(server_env)
    response = await server_env.token(
        client, {"grant_type": "client_credentials", "scope": "docs:write"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_client_credentials_refuses_openid_scopes(server_env: ServerEnv) -> None:
    client = await machine(server_env, scopes=["docs:read", "openid"])
    response = await server_env.token(
        client, {"grant_type": "client_credentials", "scope": "openid"}
    )
    assert response.json()["error"] == "invalid_scope"


async def test_client_credentials_unknown_resource_is_invalid_target(
    server_env: ServerEnv,
) -> None:
    client = await machine(server_env)
    response = await server_env.token(
        client, {"grant_type": "client_credentials", "resource": "https://other.test"}
    )
    assert response.json()["error"] == "invalid_target"


async def test_client_credentials_needs_the_grant(server_env: ServerEnv) -> None:
    client = await server_env.client()  # authorization_code only
    response = await server_env.token(client, {"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_client_credentials_needs_client_authentication(server_env: ServerEnv) -> None:
    client = await machine(server_env)
    response = await server_env.token(
        client,
        {"grant_type": "client_credentials", "client_id": client.client.client_id},
        auth="raw",
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_opaque_access_tokens_are_random_and_introspectable(server_env: ServerEnv) -> None:
    client = await machine(server_env, access_token_format="opaque")
    body = (await server_env.token(client, {"grant_type": "client_credentials"})).json()
    token = body["access_token"]
    assert token.startswith("ts_at_")
    assert token.count(".") == 0
    info = await server_env.introspect(client, token)
    assert info["active"] is True
    assert info["sub"] == client.client.client_id
    assert info["scope"] == "docs:read"


async def test_rotated_secret_is_refused_within_the_client_cache_lifetime(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await machine(env)
    assert (await env.token(client, {"grant_type": "client_credentials"})).status_code == 200
    new_secret = await env.admin.rotate_client_secret(client.client.client_id)
    env.clock.advance(env.settings.client_cache_ttl + 0.5)
    old = await env.token(client, {"grant_type": "client_credentials"})
    assert old.status_code == 401
    rotated = type(client)(client.client, new_secret)
    assert (await env.token(rotated, {"grant_type": "client_credentials"})).status_code == 200


async def test_a_burst_on_a_cold_cache_loads_the_client_and_its_api_once(
    server_env: ServerEnv,
) -> None:
    """After the client cache expired (an idle spell, or the first requests after start), a
    burst of token requests looks the client and its API up once, not once per request: each
    lookup opens a transaction on SQLite's single connection, and 16 of them one behind the
    other kept the burst waiting for half a second under load."""
    from sqlalchemy import event

    env = server_env
    client = await machine(env)
    assert (await env.token(client, {"grant_type": "client_credentials"})).status_code == 200
    env.clock.advance(3 * env.settings.client_cache_ttl)  # long expired: nothing to serve
    lookups: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM ts_clients" in statement or "FROM ts_apis" in statement:
            lookups.append("clients" if "FROM ts_clients" in statement else "apis")

    engine = env.app.state.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        burst = await asyncio.gather(
            *(env.token(client, {"grant_type": "client_credentials"}) for _ in range(16))
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [r.status_code for r in burst] == [200] * 16
    assert sorted(lookups) == ["apis", "clients"]
