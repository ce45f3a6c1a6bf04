"""Several ``tokensmith serve`` processes on one PostgreSQL database (and one Redis), the way
production runs them behind a load balancer (issue 8): migrations run once when they start
together, a code issued by one is redeemed at another, concurrent redemptions of one code or one
refresh token spread over the processes give exactly one token, a secret rotated through the CLI
is refused by every process within ``client_cache_ttl``, and a key rotated through the CLI is
published and used by every process within ``key_reload_interval``.

Each test makes its own empty database and starts its own processes on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.live import CLI_TIMEOUT, LiveServer, live_servers, tokensmith_command
from tests.production.cluster import (
    SERVE_SETTINGS,
    Tenant,
    client_credentials,
    jwks,
    logs,
    outcomes,
    redeem,
    refresh,
    register,
    sign_in_code,
    verify_access_token,
)
from tokensmith.storage.sqlalchemy.migrate import head_revision

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CONCURRENT = 200
PARALLEL = 50
REPLAY_ROUNDS = 10
PROPAGATION_DEADLINE = 15.0
"""Bound of every poll for a change to reach all processes (the settings say 1 s)."""


async def scalar(database_url: str, sql: str) -> Any:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


def http_client() -> httpx.AsyncClient:
    # No connection is reused: a server closes an idle connection after 5 s by its clock, and
    # the client counts the idle time from when it read the answer. On a loaded machine that read
    # can come seconds late, so a request went out on a connection the server was closing: an
    # intermittent ReadError (seen even with the client's expiry at 1 s). What these tests check
    # is what the processes decide, not keep-alive.
    limits = httpx.Limits(max_connections=PARALLEL, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=30.0, limits=limits)


def cli(server: LiveServer, *args: str) -> str:
    """``tokensmith ARGS`` on the servers' database: a separate process, as an operator runs it."""
    done = subprocess.run(
        [*tokensmith_command(), *args],
        env=server.env,
        cwd=server.directory,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    if done.returncode != 0:
        server.fail(f"`tokensmith {' '.join(args)}` exited {done.returncode}: {done.stderr}")
    return done.stdout


async def test_migrations_run_once_when_three_processes_start_together(
    tmp_path: Path, pg_database: str
) -> None:
    with live_servers(tmp_path, 3, database_url=pg_database, **SERVE_SETTINGS) as servers:
        versions = await scalar(pg_database, "SELECT count(*) FROM alembic_version")
        version = await scalar(pg_database, "SELECT version_num FROM alembic_version")
        assert (versions, version) == (1, head_revision())
        async with http_client() as http:
            for server in servers:
                response = await http.get(server.url("/.well-known/openid-configuration"))
                assert response.status_code == 200
                assert response.json()["issuer"] == servers[0].issuer
        output = logs(servers)
        assert "Traceback" not in output, output
        assert "ERROR" not in output, output
        async with http_client() as http:
            published = [
                sorted(key["kid"] for key in (await jwks(http, server))["keys"])
                for server in servers
            ]
    per_alg = await scalar(
        pg_database, "SELECT max(n) FROM (SELECT count(*) AS n FROM ts_signing_keys GROUP BY alg) c"
    )
    assert per_alg == 1, "processes that start together made their own signing keys"
    assert published.count(published[0]) == len(published), published


@pytest.mark.parametrize("store", ["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def test_code_issued_by_one_process_is_redeemed_at_another(
    tmp_path: Path, pg_database: str, store: str, request: pytest.FixtureRequest
) -> None:
    """A code issued by the first process is redeemed at the second; presented again at the
    first it revokes what it issued. Then two redemptions of one code at once, one at each
    process: one token, and the replay revokes it (RFC 9700 §4.2.4) however the two interleave."""
    extra = request.getfixturevalue("shared_redis") if store == "redis" else {}
    settings = {**SERVE_SETTINGS, **extra}
    with live_servers(tmp_path, 2, database_url=pg_database, **settings) as servers:
        first, second = servers
        tenant = await register(first)
        async with first.browser() as ua, http_client() as http:
            code, verifier = await sign_in_code(first, ua, tenant)
            response = await redeem(http, second, tenant, code, verifier)
            assert response.status_code == 200, (response.text, logs(servers))
            tokens = response.json()
            # Verified with the JWKS of the process that signed it (processes that started
            # together may publish different keys until their next reload: see the first test).
            claims = await verify_access_token(http, second, tokens["access_token"])
            assert claims["client_id"] == tenant.client_id
            again = await redeem(http, first, tenant, code, verifier)
            assert again.status_code == 400
            assert again.json()["error"] == "invalid_grant"
            # The replay at the first process revoked what the second one issued.
            used = await refresh(http, second, tenant, tokens["refresh_token"])
            assert used.status_code == 400, used.text

            surviving = 0
            for _ in range(REPLAY_ROUNDS):
                code, verifier = await sign_in_code(first, ua, tenant)
                results = await asyncio.gather(
                    *(redeem(http, server, tenant, code, verifier) for server in servers)
                )
                assert outcomes(results) == {"200": 1, "400 invalid_grant": 1}, logs(servers)
                (winner,) = [r for r in results if r.status_code == 200]
                after = await refresh(http, first, tenant, winner.json()["refresh_token"])
                surviving += after.status_code == 200
    assert surviving == 0, f"{surviving} of {REPLAY_ROUNDS} codes replayed concurrently kept tokens"


async def bounded_gather(calls: list[Any]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(call: Any) -> httpx.Response:
        async with gate:
            response: httpx.Response = await call
            return response

    return await asyncio.gather(*(one(call) for call in calls))


@pytest.mark.parametrize("store", ["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def test_concurrent_redemptions_over_three_processes_give_one_token(
    tmp_path: Path, pg_database: str, store: str, request: pytest.FixtureRequest
) -> None:
    """200 concurrent redemptions of one code, spread over three processes: exactly one 200,
    every other one ``invalid_grant``. The same for one refresh token: exactly one 200, and as
    concurrent uses of a refresh token count as reuse (there is no grace window, see
    ``core/grants/refresh_token.py``), the whole family is revoked afterwards. Refresh tokens
    live in SQL whether or not Redis is used, so that part runs once (``sql``)."""
    extra = request.getfixturevalue("shared_redis") if store == "redis" else {}
    settings = {**SERVE_SETTINGS, **extra}
    with live_servers(tmp_path, 3, database_url=pg_database, **settings) as servers:
        tenant = await register(servers[0])
        async with servers[0].browser() as ua, http_client() as http:
            code, verifier = await sign_in_code(servers[0], ua, tenant)
            results = await bounded_gather(
                [redeem(http, servers[i % 3], tenant, code, verifier) for i in range(CONCURRENT)]
            )
            counts = outcomes(results)
            assert counts == {"200": 1, "400 invalid_grant": CONCURRENT - 1}, logs(servers)
            if store == "redis":
                return

            # A fresh family, then one refresh token used 200 times at once.
            code, verifier = await sign_in_code(servers[1], ua, tenant)
            first = await redeem(http, servers[1], tenant, code, verifier)
            assert first.status_code == 200, first.text
            refresh_token = first.json()["refresh_token"]
            results = await bounded_gather(
                [refresh(http, servers[i % 3], tenant, refresh_token) for i in range(CONCURRENT)]
            )
            counts = outcomes(results)
            assert counts == {"200": 1, "400 invalid_grant": CONCURRENT - 1}, logs(servers)
            (winner,) = [r for r in results if r.status_code == 200]
            # Concurrent use is reuse: the family is revoked, the winner's new token too.
            for server in servers:
                after = await refresh(http, server, tenant, winner.json()["refresh_token"])
                assert after.status_code == 400, after.text
                assert after.json()["error"] == "invalid_grant"


async def poll(deadline: float, check: Any, what: str, servers: list[LiveServer]) -> float:
    """Call ``check()`` until it is true; the seconds it took. Fails at ``deadline``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {PROPAGATION_DEADLINE} s\n{logs(servers)}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_secret_rotated_through_the_cli_is_refused_by_every_process(
    tmp_path: Path, pg_database: str
) -> None:
    settings = {**SERVE_SETTINGS, "client_cache_ttl": "1"}
    with live_servers(tmp_path, 2, database_url=pg_database, **settings) as servers:
        tenant = await register(servers[0])
        async with http_client() as http:
            for server in servers:  # every process has the client (and old secret) cached
                response = await client_credentials(http, server, tenant)
                assert response.status_code == 200, response.text
            out = cli(servers[0], "clients", "rotate-secret", tenant.client_id, "--json")
            rotated = Tenant(tenant.client_id, json.loads(out)["client_secret"])
            deadline = time.monotonic() + PROPAGATION_DEADLINE
            for server in servers:

                async def refused(server: LiveServer = server) -> bool:
                    response = await client_credentials(http, server, tenant)
                    assert response.status_code in (200, 401), response.text
                    return response.status_code == 401

                took = await poll(
                    deadline, refused, f"old secret refused by {server.base_url}", servers
                )
                print(f"old secret refused by {server.base_url} after {took:.2f} s")
            for server in servers:
                old = await client_credentials(http, server, tenant)
                assert old.status_code == 401
                assert old.json()["error"] == "invalid_client"
                new = await client_credentials(http, server, rotated)
                assert new.status_code == 200, new.text


async def test_key_rotated_through_the_cli_is_published_and_used_by_every_process(
    tmp_path: Path, pg_database: str
) -> None:
    settings = {**SERVE_SETTINGS, "key_reload_interval": "1"}
    with live_servers(tmp_path, 2, database_url=pg_database, **settings) as servers:
        tenant = await register(servers[0])
        out = cli(servers[0], "keys", "rotate", "--publish-ahead", "0")
        match = re.search(r"new key (\S+) \(ES256\)", out)
        assert match, out
        kid = match.group(1)
        async with http_client() as http:
            deadline = time.monotonic() + PROPAGATION_DEADLINE
            for server in servers:

                async def signs_with_new_key(server: LiveServer = server) -> bool:
                    keys = await http.get(server.url("/jwks.json"))
                    if kid not in {k["kid"] for k in keys.json()["keys"]}:
                        return False
                    response = await client_credentials(http, server, tenant)
                    assert response.status_code == 200, response.text
                    token = response.json()["access_token"]
                    return bool(jwt.get_unverified_header(token)["kid"] == kid)

                took = await poll(
                    deadline, signs_with_new_key, f"new key at {server.base_url}", servers
                )
                print(f"{server.base_url} publishes and signs with the new key after {took:.2f} s")
            for server in servers:  # each process's token verifies with every process's JWKS
                response = await client_credentials(http, server, tenant)
                token = response.json()["access_token"]
                assert jwt.get_unverified_header(token)["kid"] == kid
                for other in servers:
                    claims = await verify_access_token(http, other, token)
                    assert claims["client_id"] == tenant.client_id
