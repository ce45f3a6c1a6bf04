"""Every database connection of a process busy (a burst larger than the pool, or new
connections hanging while PostgreSQL is unreachable): a request that waited the pool timeout
in vain is a temporary overload, answered 503 ``temporarily_unavailable`` with ``Retry-After``,
not a 500 ``server_error``."""

from __future__ import annotations

import asyncio

from tests.server.harness import ServerEnv
from tests.support.clients import machine
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings

POOL_TIMEOUT = 0.2


async def test_a_request_that_gets_no_database_connection_is_503(
    database_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=database_url,
        database_pool_size=1,
        database_max_overflow=0,
        token_rate_limit=None,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    async with ServerEnv.start(settings, clock) as env:
        # an opaque token is a row to write: on SQLite too (where the client is read on the
        # reader's own connections) the request needs the process's one write connection
        client = await machine(env, access_token_format="opaque")
        engine = env.app.state.runtime.db.engine
        # The pool waits 30 s by default and no setting shortens it; a test cannot wait that.
        engine.pool._timeout = POOL_TIMEOUT
        async with engine.connect() as held:  # the process's one connection, busy
            await held.exec_driver_sql("SELECT 1")
            response = await env.token(client, {"grant_type": "client_credentials"})
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"]
        again = await env.token(client, {"grant_type": "client_credentials"})
        assert again.status_code == 200, again.text


CONCURRENT = 16
"""The benchmark's concurrency (wrk's 16 connections against one process)."""


async def test_the_default_pool_keeps_the_connections_a_steady_load_needs(
    pg_database: str,
) -> None:
    """With the default settings, a process that has served 16 concurrent database users keeps
    their connections: the next 16 open no PostgreSQL backend. (The earlier default, a pool of
    10 plus 10 overflow, closed every overflow connection when it was returned, so a steady load
    above 10 concurrent requests started a backend every few requests.)"""
    from sqlalchemy import event

    from tokensmith.storage.sqlalchemy.engine import create_engine

    defaults = Settings(database_url=pg_database, _env_file=None)  # type: ignore[call-arg]
    engine = create_engine(
        pg_database,
        pool_size=defaults.database_pool_size,
        max_overflow=defaults.database_max_overflow,
    )
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    all_busy = asyncio.Barrier(CONCURRENT)

    async def user() -> None:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
            await all_busy.wait()  # every connection checked out at once

    try:
        await asyncio.gather(*(user() for _ in range(CONCURRENT)))
        assert opened == CONCURRENT
        await asyncio.gather(*(user() for _ in range(CONCURRENT)))
        assert opened == CONCURRENT, f"{opened - CONCURRENT} new backends for the second wave"
    finally:
        await engine.dispose()
