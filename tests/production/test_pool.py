"""Every database connection of a process busy (a burst larger than the pool, or new
connections hanging while PostgreSQL is unreachable): a request that waited the pool timeout
in vain is a temporary overload, answered 503 ``temporarily_unavailable`` with ``Retry-After``,
not a 500 ``server_error``."""

from __future__ import annotations

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
        client = await machine(env)
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
