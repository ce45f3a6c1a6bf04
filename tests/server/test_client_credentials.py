"""Client credentials (RFC 6749 §4.4), per issue 3."""

from __future__ import annotations

import asyncio

import pytest

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

    db = env.app.state.runtime.db
    engines = [e.sync_engine for e in (db.engine, db.reader) if e is not None]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        burst = await asyncio.gather(
            *(env.token(client, {"grant_type": "client_credentials"}) for _ in range(16))
        )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert [r.status_code for r in burst] == [200] * 16
    assert sorted(lookups) == ["apis", "clients"]


async def test_a_token_request_does_not_queue_behind_the_writers_to_reload_its_client(
    server_env: ServerEnv,
) -> None:
    """On a SQLite file every transaction is a writer's on the process's one write connection,
    and under load (logins, each a few transactions) the queue for it was seconds long: a
    client_credentials request whose cached client and API had expired reloaded them in that
    queue, and every request behind it waited (17.4's cc p99 of 2 s with 20 logins in flight).
    Reloads by a request that holds no connection read on the reader's own connections: the
    token is issued while a transaction holds the write connection. PostgreSQL's pool has
    more than one connection: its reloads take another of the pool's (no reader)."""
    env = server_env
    db = env.app.state.runtime.db
    client = await machine(env)
    assert (await env.token(client, {"grant_type": "client_credentials"})).status_code == 200
    env.clock.advance(3 * env.settings.client_cache_ttl)  # client and API to be read again
    postgresql = env.settings.database_url.startswith("postgresql")
    assert (db.reader is None) is postgresql
    async with db.transaction():  # SQLite's one write connection, held until the token is issued
        response = await asyncio.wait_for(
            env.token(client, {"grant_type": "client_credentials"}), 20
        )
    assert response.status_code == 200, response.text
    assert env.app.state.runtime.server.context.client_cache.fresh(client.client.client_id)


async def test_the_reader_reads_committed_rows_and_writes_nothing(server_env: ServerEnv) -> None:
    """``Database.read``: what committed transactions wrote, never what one still open wrote,
    and no write (SQLite's reader is ``query_only``; without a reader, the transaction of the
    read is rolled back)."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from tokensmith.storage.sqlalchemy import tables as t

    db = server_env.app.state.runtime.db
    client = await machine(server_env)
    client_id = client.client.client_id
    async with db.read() as stores:
        found = await stores.clients.get(client_id)
    assert found is not None
    assert found.client_id == client_id
    renamed = t.clients.update().where(t.clients.c.client_id == client_id).values(name="renamed")
    if db.reader is not None:
        async with db.read() as stores:
            with pytest.raises(DBAPIError, match="readonly"):
                await stores._conn.execute(renamed)
    else:
        async with db.read() as stores:
            await stores._conn.execute(renamed)
    async with db.transaction() as stores:
        name = (
            await stores._conn.execute(
                select(t.clients.c.name).where(t.clients.c.client_id == client_id)
            )
        ).scalar_one()
    assert name != "renamed"
