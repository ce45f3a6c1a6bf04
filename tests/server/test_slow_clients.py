"""Slow clients hold no database connection, and get 408 after ``form_read_timeout``.

Every endpoint that reads a body reads it whole, under a total deadline, before it opens a
transaction. Here 24 clients post to one endpoint at a trickle (one byte every 0.2 s of a
1000-byte form, which they never finish): meanwhile a token request and a page load are served,
on SQLite (one connection per process, which one held transaction would block) and on
PostgreSQL (24 is more than the pool's 20 connections); then each slow client gets 408
with ``Connection: close`` and its connection is closed. Over real sockets, against a real
``tokensmith serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.live import LiveServer, live_server
from tests.services import postgres_url
from tests.support.database import pg_execute

pytestmark = pytest.mark.slow

FORM_READ_TIMEOUT = 5.0
SLOW_CLIENTS = 24
"""More than the 20 connections (the default pool, no overflow) of a process on PostgreSQL."""
TRICKLE = 0.2
TRICKLE_FOR = FORM_READ_TIMEOUT / 2
"""A slow client sends a byte every TRICKLE seconds for this long, then waits without ever
finishing its body. (Bytes still arriving when the server closes the connection would make
its kernel reset it, and the client could lose the 408 to the reset.)"""
API = "https://api.slow.test"

JSON_ENDPOINTS = {
    "token": "/token",
    "revocation": "/revoke",
    "introspection": "/introspect",
    "userinfo": "/userinfo",
}
PAGE_ENDPOINTS = {
    "authorize": "/authorize",
    "login": "/login",
    "consent": "/consent",
    "logout": "/logout",
    "account": "/account",
}


@dataclass(frozen=True)
class Served:
    server: LiveServer
    client_id: str
    client_secret: str


@contextlib.contextmanager
def _database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'tokensmith.db'}"
        return
    admin = postgres_url()
    name = f"ts_slow_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A server whose token requests and pages each need a database connection (no client
    cache, no rate limit), on each backend."""
    directory = tmp_path_factory.mktemp(f"slow-{request.param}")
    with (
        _database(request.param, directory) as database_url,
        live_server(
            directory,
            database_url=database_url,
            form_read_timeout=str(FORM_READ_TIMEOUT),
            client_cache_ttl="0",
            token_rate_limit="",
        ) as server,
    ):
        server.create_api(API, ("docs:read",))
        client = server.create_client(
            "Machine", grants=("client_credentials",), scopes=("docs:read",), api=API
        )
        yield Served(server, client["client_id"], client["client_secret"])


class SlowClient:
    """A client posting a form to ``path`` at a trickle, reading whatever the server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.answer = asyncio.create_task(reader.read())  # all output, until the server closes
        self.trickle = asyncio.create_task(self._trickle())

    @classmethod
    async def start(cls, server: LiveServer, path: str) -> SlowClient:
        port = int(server.url("").rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            "a=".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def _trickle(self) -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(int(TRICKLE_FOR / TRICKLE)):
                await asyncio.sleep(TRICKLE)
                if self.answer.done():
                    return
                self.writer.write(b"b")
                await self.writer.drain()

    def close(self) -> None:
        self.trickle.cancel()
        self.answer.cancel()
        self.writer.close()


def _head_and_body(output: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = output.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def _stays_responsive_then_408(served: Served, path: str) -> list[bytes]:
    """Start the slow clients; check that a token request and a page load are served while
    every slow request is still unanswered; return what each slow client got in the end."""
    server = served.server
    slow = [await SlowClient.start(server, path) for _ in range(SLOW_CLIENTS)]
    try:
        await asyncio.sleep(1.0)  # every slow request is being read by now
        async with httpx.AsyncClient(timeout=30.0) as http:
            token = await http.post(
                server.url("/token"),
                data={"grant_type": "client_credentials"},
                auth=(served.client_id, served.client_secret),
            )
            page = await http.get(server.url("/account"))
        answered = sum(client.answer.done() for client in slow)
        assert token.status_code == 200, (token.text, server.log())
        assert page.status_code == 401, (page.text, server.log())
        assert answered == 0, (
            f"{answered} slow requests were answered before the token request and page load "
            f"finished (within form_read_timeout={FORM_READ_TIMEOUT} s): they waited"
        )
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(client.answer for client in slow)), FORM_READ_TIMEOUT + 20
            )
        except TimeoutError:
            server.fail(f"slow requests to {path} got no answer after form_read_timeout")
            raise
    finally:
        for client in slow:
            client.close()


@pytest.mark.parametrize("endpoint", list(JSON_ENDPOINTS))
async def test_a_slow_client_holds_no_connection_and_gets_408_json(
    served: Served, endpoint: str
) -> None:
    for output in await _stays_responsive_then_408(served, JSON_ENDPOINTS[endpoint]):
        status, headers, body = _head_and_body(output)
        assert status == 408, output
        assert headers.get("connection") == "close"
        assert json.loads(body)["error"] == "invalid_request"


@pytest.mark.parametrize("endpoint", list(PAGE_ENDPOINTS))
async def test_a_slow_browser_holds_no_connection_and_gets_a_408_page(
    served: Served, endpoint: str
) -> None:
    for output in await _stays_responsive_then_408(served, PAGE_ENDPOINTS[endpoint]):
        status, headers, body = _head_and_body(output)
        assert status == 408, output
        assert headers.get("connection") == "close"
        assert headers.get("content-type", "").startswith("text/html")
        assert b"The form took too long to arrive" in body
