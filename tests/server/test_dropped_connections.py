"""PostgreSQL without a pre-ping on every checkout (issue 17): a pooled connection that the
server dropped (a restart, an idle timeout, an administrator) is found by the first statement of
a request's transaction, which is sent again once on a new connection, so no request fails."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.server.harness import ServerEnv
from tests.support.clients import machine
from tests.support.database import pg_admin_url, pg_execute


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
