"""Regressions found by fuzzing the HTTP layer (see ``test_fuzz.py`` and docs/fuzzing.md): raw
ASGI requests that an HTTP client library would not send, answered without a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.server.harness import ServerEnv
from tests.support.asgi import http_scope
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.settings import Settings


@pytest.fixture
async def sqlite_env(sqlite_url: str, clock: FakeClock) -> AsyncIterator[ServerEnv]:
    """The server on SQLite only: what is tested here does not depend on the database."""
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    async with ServerEnv.start(settings, clock) as env:
        yield env


async def asgi_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """Send one request straight to the ASGI app; the response status."""
    scope = http_scope(method, path, headers)
    sent: list[dict[str, Any]] = []
    body = [{"type": "http.request", "body": b"grant_type=x", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return body.pop() if body else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize(
    ("length", "status"),
    [
        (b"\xb2", 400),  # '²' in latin-1: str.isdigit() is true, int() refuses it
        (b"\xb9\xb2", 400),
        (b"-1", 400),
        (b"9" * 5000, 413),  # int() refuses more than 4300 digits
        (b"", 400),
        (b"1" * 40, 413),
    ],
)
@pytest.mark.parametrize("path", ["/token", "/authorize", "/userinfo"])
async def test_malformed_content_length_is_a_client_error(
    sqlite_env: ServerEnv, path: str, length: bytes, status: int
) -> None:
    headers = [
        (b"host", b"as.test"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", length),
    ]
    assert await asgi_call(sqlite_env.app, "POST", path, headers) == status
