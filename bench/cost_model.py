"""The cost model: database and Redis round-trips, signatures and HMACs per token request.

Counted, not guessed: an in-process server (the real app over ``httpx.ASGITransport``) with
SQLAlchemy event listeners on its engine and counters around the Redis client, the JWS signer
and HMAC. Each grant is measured over ``--requests`` requests after one warm-up request (so the
client and API caches are warm, as on a busy server), and once more with cold caches.

    .venv/bin/python -m bench.cost_model [--postgres URL] [--redis URL] [--json PATH]

Audit events are counted but not written (the background writer inserts them in batches of up
to 200: one INSERT and one transaction per batch). Database round-trips are statements sent
(``before_cursor_execute``: this includes SQLite's ``BEGIN IMMEDIATE`` and savepoints) plus
transaction control that is not a statement (asyncpg's ``BEGIN``, every ``COMMIT`` and
``ROLLBACK``) plus PostgreSQL's pre-ping on each pool checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import json
import os
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.prepare import Browser, code_body, refresh_body
from bench.seed import API, CC_BODY, REDIRECT, SCOPES, Seeded, seed
from tokensmith.admin import Admin
from tokensmith.core import jwt_access_token
from tokensmith.server.app import create_app
from tokensmith.settings import Settings

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class OpenIdBrowser(Browser):
    """The bench browser asking for ``openid offline_access docs:read`` (with a nonce): the code
    exchange then signs an ID token (RS256 by default) and still issues a refresh token, so it
    writes the same rows as the exchange without ``openid``."""

    def _authorize_url(self, challenge: str) -> str:
        url = super()._authorize_url(challenge)
        scoped = url.replace(
            urlencode({"scope": "docs:read"}),
            urlencode({"scope": "openid offline_access docs:read"}),
        )
        assert scoped != url
        return scoped + "&" + urlencode({"nonce": "n-0S6_WzA2Mj"})


async def with_openid_web(settings: Settings, seeded: Seeded) -> Seeded:
    """``seeded`` with a web client that may also ask for ``openid``."""
    async with Admin(settings) as admin:
        web = await admin.create_client(
            name="bench web openid",
            client_type="confidential",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
            scopes=(*SCOPES, "openid", "offline_access"),
            api=API,
        )
    assert web.client_secret
    return dataclasses.replace(seeded, web_id=web.client.client_id, web_secret=web.client_secret)


class Counts:
    def __init__(self) -> None:
        self.on = False
        self.c: Counter[str] = Counter()

    def add(self, what: str, n: int = 1) -> None:
        if self.on:
            self.c[what] += n


def listen(engine: AsyncEngine, counts: Counts, *, sqlite: bool) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "before_cursor_execute")
    def _statement(*_: Any) -> None:
        counts.add("db statements")

    if sqlite:

        @event.listens_for(sync, "commit")
        def _commit(*_: Any) -> None:
            counts.add("db transaction control")

        @event.listens_for(sync, "rollback")
        def _rollback(*_: Any) -> None:
            counts.add("db transaction control")

    def _driver(record: Any) -> None:
        """What asyncpg sends outside SQLAlchemy's statements: its ``BEGIN``/``COMMIT``/
        ``ROLLBACK`` (sent only when a statement ran: SQLAlchemy's ``begin`` alone sends
        nothing) and the statements sent to the driver (``RetryingConnection.driver_fetch``)."""
        control = record.query.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))
        counts.add("db transaction control" if control else "db statements")

    @event.listens_for(sync.pool, "checkout")
    def _checkout(dbapi_connection: Any, *_: Any) -> None:
        counts.add("db checkouts")
        if not sqlite:
            dbapi_connection.driver_connection.add_query_logger(_driver)  # a set: added once
            if engine.pool._pre_ping:  # type: ignore[attr-defined]
                counts.add("db pre-ping")


@contextlib.contextmanager
def patched(counts: Counts) -> Any:
    """Count JWS signatures (tokensmith's signer and PyJWT's), HMACs and Redis commands."""
    import redis.asyncio

    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, what: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        originals.append((owner, name, original))
        if asyncio.iscoroutinefunction(original):

            async def async_counted(*args: Any, **kwargs: Any) -> Any:
                counts.add(what)
                return await original(*args, **kwargs)

            setattr(owner, name, async_counted)
        else:

            def counted(*args: Any, **kwargs: Any) -> Any:
                counts.add(what)
                return original(*args, **kwargs)

            setattr(owner, name, counted)

    wrap(jwt_access_token, "_signature", "signatures")
    wrap(jwt.api_jws.PyJWS, "encode", "signatures")
    wrap(hmac, "new", "hmac")
    wrap(redis.asyncio.Redis, "execute_command", "redis commands")
    wrap(redis.asyncio.client.Pipeline, "execute", "redis commands")
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


@contextlib.asynccontextmanager
async def server(
    database_url: str, redis_url: str | None, *, seeded: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, tuple[Browser, Browser], Seeded, Counts, Any]]:
    options: dict[str, Any] = {
        "database_url": database_url,
        "token_rate_limit": "",
        "authorization_code_ttl": 600,
        "log_level": "WARNING",
        "_env_file": None,
    }
    if redis_url:
        options["redis_url"] = redis_url
        options["redis_prefix"] = f"tsbench{os.getpid()}:"
    settings = Settings(**options)
    registered = await (seed(settings) if seeded else reseed(settings))
    openid = await with_openid_web(settings, registered)
    app = create_app(settings)
    counts = Counts()
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        listen(rt.db.engine, counts, sqlite=database_url.startswith("sqlite"))
        # audit events are counted, not written: the background writer batches them (one
        # INSERT per batch of up to 200), which would blur the per-request counts
        rt.server.audit = lambda _event: counts.add("audit events")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=settings.issuer) as http,
            Browser(settings.issuer, registered, transport) as browser,
            OpenIdBrowser(settings.issuer, openid, transport) as openid_browser,
        ):
            await browser.login()
            await openid_browser.login()
            try:
                yield http, (browser, openid_browser), registered, counts, rt
            finally:
                if redis_url:  # leave nothing behind in a shared Redis
                    redis = rt.db.ephemeral.redis
                    keys = [k async for k in redis.scan_iter(match=options["redis_prefix"] + "*")]
                    if keys:
                        await redis.delete(*keys)


async def reseed(settings: Settings) -> Seeded:
    """New clients in a database that ``seed`` already filled (the bench run's databases)."""
    from bench.seed import API, REDIRECT, SCOPES
    from tokensmith.admin import Admin

    async with Admin(settings) as admin:
        common: dict[str, Any] = {"client_type": "confidential", "scopes": SCOPES, "api": API}
        cc = ["client_credentials"]
        jwt_client = await admin.create_client(name="cost jwt", grant_types=cc, **common)
        opaque = await admin.create_client(
            name="cost opaque", grant_types=cc, access_token_format="opaque", **common
        )
        web = await admin.create_client(
            name="cost web",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
            **common,
        )
    assert jwt_client.client_secret
    assert opaque.client_secret
    assert web.client_secret
    return Seeded(
        cc_jwt_id=jwt_client.client.client_id,
        cc_jwt_secret=jwt_client.client_secret,
        cc_opaque_id=opaque.client.client_id,
        cc_opaque_secret=opaque.client_secret,
        web_id=web.client.client_id,
        web_secret=web.client_secret,
    )


async def measure_backend(
    database_url: str, redis_url: str | None, requests: int, *, seeded: bool = True
) -> dict[str, dict[str, float]]:
    """Counts per request of each grant; ``seeded=False``: the database is already seeded."""
    rows: dict[str, dict[str, float]] = {}
    async with server(database_url, redis_url, seeded=seeded) as (
        http,
        (browser, openid_browser),
        registered,
        counts,
        rt,
    ):
        seeded_ = registered

        async def token(body: str, auth: str) -> None:
            response = await http.post(
                "/token", content=body, headers={**FORM, "Authorization": auth}
            )
            response.raise_for_status()

        async def per_request(
            name: str, make: Callable[[int], Any], auth: str, *, cold: bool = False
        ) -> None:
            bodies = await make(requests + 1)
            await token(bodies[0], auth)  # warm-up: caches filled
            counts.c.clear()
            counts.on = True
            n = 1 if cold else requests
            for body in bodies[1 : n + 1]:
                if cold:
                    rt.server.client_cache.invalidate()
                    rt.server.api_cache.invalidate()
                await token(body, auth)
            counts.on = False
            rows[name] = {k: round(v / n, 2) for k, v in sorted(counts.c.items())}

        async def fixed(n: int) -> list[str]:
            return [CC_BODY] * n

        async def codes(n: int) -> list[str]:
            return [code_body(c, v) for c, v in await browser.codes(n, concurrency=4)]

        async def openid_codes(n: int) -> list[str]:
            return [code_body(c, v) for c, v in await openid_browser.codes(n, concurrency=4)]

        async def refresh_tokens(n: int) -> list[str]:
            return [refresh_body(t) for t in await browser.refresh_tokens(n, concurrency=4)]

        with patched(counts):
            await per_request("client_credentials JWT", fixed, seeded_.cc_jwt_auth)
            await per_request(
                "client_credentials JWT, cold caches", fixed, seeded_.cc_jwt_auth, cold=True
            )
            await per_request("client_credentials opaque", fixed, seeded_.cc_opaque_auth)
            await per_request("authorization_code exchange", codes, seeded_.web_auth)
            await per_request(
                "authorization_code exchange, openid (id_token RS256)",
                openid_codes,
                openid_browser.seeded.web_auth,
            )
            await per_request("refresh_token rotation", refresh_tokens, seeded_.web_auth)
    return rows


COLUMNS = (
    "db statements",
    "db transaction control",
    "db pre-ping",
    "redis commands",
    "signatures",
    "hmac",
    "audit events",
)


def markdown(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| backend | request | DB statements | DB txn control | PG pre-ping | Redis | "
        "signatures | HMACs | audit events |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, rows in results.items():
        for name, row in rows.items():
            cells = " | ".join(f"{row.get(c, 0):g}" for c in COLUMNS)
            lines.append(f"| {backend} | {name} | {cells} |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def postgres(admin_url: str | None) -> Any:
    from bench.run import postgres_database

    with postgres_database(admin_url) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tokensmith-cost-") as tmp:
        sqlite = f"sqlite+aiosqlite:///{tmp}/cost.db"
        results["SQLite"] = asyncio.run(measure_backend(sqlite, None, args.requests))
        if args.redis:
            sqlite2 = f"sqlite+aiosqlite:///{tmp}/cost-redis.db"
            results["SQLite + Redis"] = asyncio.run(
                measure_backend(sqlite2, args.redis, args.requests)
            )
    if args.postgres:
        with postgres(args.postgres) as url:
            if url is not None:
                results["PostgreSQL"] = asyncio.run(measure_backend(url, None, args.requests))
                if args.redis:
                    results["PostgreSQL + Redis"] = asyncio.run(
                        measure_backend(url, args.redis, args.requests, seeded=False)
                    )
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
