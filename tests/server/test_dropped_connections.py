"""PostgreSQL without a pre-ping on every checkout (issue 17): a pooled connection that the
server dropped (a restart, an idle timeout, an administrator) is found by the first statement of
a request's transaction, which is sent again once on a new connection, so no request fails."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.server.harness import REDIRECT, ServerEnv
from tests.support.clients import machine
from tests.support.code_flow import code_flow, ready
from tests.support.database import pg_admin_url, pg_execute
from tokensmith.core.models import Grant


async def drop_connections(env: ServerEnv) -> int:
    """Terminate every server connection to this test's database (``pg_terminate_backend``):
    the pooled connections of the app and of the admin die as in a database restart."""
    database = make_url(env.settings.database_url).database
    before = env.app.state.runtime.db.engine.pool.checkedin()
    await pg_execute(
        pg_admin_url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
    )
    return int(before)


async def test_requests_survive_dropped_pooled_connections(server_env: ServerEnv) -> None:
    env = server_env
    if not env.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the SQLite file has no server to drop connections")
    assert not env.app.state.runtime.db.engine.pool._pre_ping  # no round-trip per checkout
    client = await machine(env, access_token_format="opaque")  # every token is a row
    for _ in range(3):
        ok = await env.token(client, {"grant_type": "client_credentials"})
        assert ok.status_code == 200, ok.text
        assert await drop_connections(env) >= 1  # a dead connection waits in the pool
        ok = await env.token(client, {"grant_type": "client_credentials"})
        assert ok.status_code == 200, ok.text
        introspected = await env.http.post(
            "/introspect",
            data={"token": ok.json()["access_token"]},
            auth=(client.client.client_id, client.client_secret or ""),
        )
        assert introspected.status_code == 200
    await drop_connections(env)
    assert (await env.http.get("/readyz")).status_code == 200


async def test_code_exchanges_and_refreshes_survive_dropped_pooled_connections(
    server_env: ServerEnv,
) -> None:
    """The code exchange's and the refresh's statements go to the driver
    (``RetryingConnection.driver_fetch``): the first one (the consumption; the rotation with its
    ``BEGIN``) is sent again on a new connection like any first one."""
    env = server_env
    if not env.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the SQLite file has no server to drop connections")
    client, flow = await ready(env, grant_types=["authorization_code", "refresh_token"])
    for attempt in range(3):
        if attempt:
            flow = await code_flow(env, client)
        assert await drop_connections(env) >= 1
        form = {
            "grant_type": "authorization_code",
            "code": flow.code,
            "code_verifier": flow.verifier,
            "redirect_uri": REDIRECT,
        }
        ok = await env.token(client, form)
        assert ok.status_code == 200, ok.text
        # the refresh's rotation, also sent to the driver (after its BEGIN), likewise
        assert await drop_connections(env) >= 1
        refresh = {"grant_type": "refresh_token", "refresh_token": ok.json()["refresh_token"]}
        refreshed = await env.token(client, refresh)
        assert refreshed.status_code == 200, refreshed.text


async def test_a_connection_dropped_inside_a_transaction_is_not_retried(
    server_env: ServerEnv,
) -> None:
    """Only a transaction's first statement is sent again on a new connection: a later one
    would run in a new transaction without the statements before it (a code consumed on the
    dead connection, its tokens written on the new one: the code usable again). It fails, and
    nothing of the transaction is stored."""
    env = server_env
    if not env.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the SQLite file has no server to drop connections")
    db = env.app.state.runtime.db
    at = 1_000
    first = Grant("dropped-1", "app", "u1", ("docs:read",), "https://api.test", at, at)

    async def write_across_a_drop() -> None:
        async with db.transaction() as stores:
            await stores.grants.create(first)
            pid = (await stores._conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await pg_execute(pg_admin_url(), f"SELECT pg_terminate_backend({int(pid)})")
            await stores.grants.create(dataclasses.replace(first, id="dropped-2"))

    with pytest.raises(DBAPIError):
        await write_across_a_drop()
    async with db.transaction() as stores:
        assert await stores.grants.get("dropped-1") is None
        assert await stores.grants.get("dropped-2") is None
