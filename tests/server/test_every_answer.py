"""Every answer of the authorization server carries a request id and the security headers, and
is counted: those of the 500 handler (an exception nothing else handled, on a fast route or
through FastAPI), CORS preflights (answered before any route) and a user middleware's own
answers included. They wrap everything (``AuthorizationServerApp.outer_middleware``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.settings import FAST_HASH
from tokensmith.server import create_app, errors, observability
from tokensmith.server.fastpath import AuthorizationServerApp
from tokensmith.server.routes import token as token_route
from tokensmith.settings import Settings

ISSUER = "https://as.test"
SPA = "https://spa.example"


def assert_marked(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["strict-transport-security"].startswith("max-age=")  # the issuer is https
    assert len(headers["x-request-id"]) == 16


def requests_counted(app: AuthorizationServerApp, method: str, status: int) -> int:
    metrics = app.state.metrics
    return sum(n for (_, m, s), n in metrics.request_counts.items() if (m, s) == (method, status))


@pytest.fixture
async def served(
    sqlite_url: str,
) -> AsyncIterator[tuple[AuthorizationServerApp, httpx.AsyncClient]]:
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings, cors_origins=[SPA])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield app, client


async def test_a_500_through_fastapi_carries_them(
    served: tuple[AuthorizationServerApp, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = served
    logged: list[str | None] = []
    monkeypatch.setattr(
        errors.log, "info", lambda *args: logged.append(observability.request_id.get())
    )
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert_marked(response)
    assert requests_counted(app, "GET", 500) == 1
    # the 500 handler's log line carries the id the user sees, to find it by
    assert logged == [response.headers["x-request-id"]]


async def test_a_500_on_a_fast_route_carries_them(
    served: tuple[AuthorizationServerApp, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = served

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(token_route, "read_client_form", broken)
    response = await client.post("/token", data={"grant_type": "client_credentials"})
    assert app._fast_stack is not None  # the fast path is on (decided at the first request)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert_marked(response)
    assert requests_counted(app, "POST", 500) == 1


async def test_a_cors_preflight_carries_them(
    served: tuple[AuthorizationServerApp, httpx.AsyncClient],
) -> None:
    app, client = served
    response = await client.options(
        "/token", headers={"Origin": SPA, "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA
    assert_marked(response)
    assert requests_counted(app, "OPTIONS", 204) == 1


async def test_a_user_middlewares_own_answer_carries_them(sqlite_url: str) -> None:
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings)

    class Maintenance:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"] == "/healthz":
                await self.inner(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down for maintenance"})

    app.add_middleware(Maintenance)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            for response in (
                await client.post("/token", data={}),  # a fast route
                await client.get("/authorize"),  # through FastAPI
            ):
                assert response.status_code == 503
                assert_marked(response)
            assert (await client.get("/healthz")).status_code == 200
