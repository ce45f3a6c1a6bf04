"""The ceilings and the resource server of the benchmark, as uvicorn factories.

``bare_asgi`` and ``plain_fastapi`` do the client-credentials work with nothing around it: parse
the form, sign one ES256 JWT with the claims tokensmith puts in an access token, answer JSON.
They authenticate nobody and store nothing: an upper bound, not a competitor.

``resource_app`` serves the same handler four times: ``/open`` unprotected,
``/floor`` behind a FastAPI dependency that does nothing (``Depends`` on ``async def`` returning
1: what any dependency costs, FastAPI's floor), ``/protected-dependency`` behind
``tokensmith.resource.ResourceServer``'s dependency solved by FastAPI, and ``/protected``, the
same declaration on a ``BearerRoute`` (the route checks the token; what the docs recommend).
Both use a JWT validator discovering the issuer given in ``BENCH_ISSUER``, audience
``BENCH_AUDIENCE``. Each path is its own one-route app behind one dict lookup, so that none
pays for matching the others (with FastAPI 0.165, ~1-2 µs a route tried in-process).
"""

import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, Form
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

ISSUER = "http://127.0.0.1"
AUDIENCE = "https://api.bench"


class Signer:
    """One ES256 key, loaded once; the claims of an RFC 9068 access token."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.headers = {"kid": "bench", "typ": "at+jwt"}

    def token(self, client_id: str, scope: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": client_id,
            "aud": AUDIENCE,
            "client_id": client_id,
            "scope": scope,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers=self.headers)


def response_body(token: str, scope: str) -> dict[str, Any]:
    return {"access_token": token, "token_type": "Bearer", "expires_in": 600, "scope": scope}


def bare_asgi() -> Any:
    """The bare-ASGI ceiling: no framework at all."""
    signer = Signer()
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        form = dict(parse_qsl(body.decode("ascii")))
        scope_value = form.get("scope", "")
        payload = orjson.dumps(response_body(signer.token("bench", scope_value), scope_value))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def plain_fastapi() -> FastAPI:
    """The plain-FastAPI ceiling: ``Form`` fields (python-multipart), one signature."""
    signer = Signer()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/token")
    async def token(
        grant_type: Annotated[str, Form()], scope: Annotated[str, Form()] = ""
    ) -> Response:
        body = response_body(signer.token("bench", scope), scope)
        return Response(
            orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    @app.get("/")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    return app


class OneRouteApps:
    """ASGI: each path its own one-route FastAPI app, found by one dict lookup, so that no
    measured route pays for matching the others (FastAPI's route matching costs ~1-2 µs a
    route tried). Lifespan events go to ``lifespan_app``; other paths get 404."""

    def __init__(self, apps: dict[str, FastAPI], lifespan_app: FastAPI) -> None:
        self.apps = apps
        self.lifespan_app = lifespan_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan_app(scope, receive, send)
            return
        app = self.apps.get(scope["path"])
        if app is None:
            await Response(status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)


def resource_app() -> OneRouteApps:
    """``/open``, ``/floor``, ``/protected-dependency`` and ``/protected`` (scope ``docs:read``),
    the same handler behind each, each its own one-route app (``/`` is the health check)."""
    from tokensmith.resource import BearerRoute, Principal, ResourceServer, TokenValidator

    issuer = os.environ.get("BENCH_ISSUER", "http://127.0.0.1:8000")
    audience = os.environ.get("BENCH_AUDIENCE", AUDIENCE)
    http = httpx.AsyncClient(timeout=5.0)
    validator = TokenValidator(http=http, issuer=issuer, audience=audience)
    rs = ResourceServer(validator)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    def one_route() -> FastAPI:
        return FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    health_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @health_app.get("/")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    open_app = one_route()

    @open_app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"document": "42"}

    async def trivial() -> int:
        return 1

    floor_app = one_route()

    @floor_app.get("/floor")
    async def floor_route(value: Annotated[int, Depends(trivial)]) -> dict[str, str]:
        return {"document": "42"}

    dependency_app = one_route()

    @dependency_app.get("/protected-dependency")
    async def protected_dependency_route(
        principal: Annotated[Principal, rs.require_scopes("docs:read")],
    ) -> dict[str, str]:
        return {"document": "42"}

    protected_app = one_route()
    protected_app.router.route_class = BearerRoute

    @protected_app.get("/protected")
    async def protected_route(
        principal: Annotated[Principal, rs.require_scopes("docs:read")],
    ) -> dict[str, str]:
        return {"document": "42"}

    apps = {
        "/": health_app,
        "/open": open_app,
        "/floor": floor_app,
        "/protected-dependency": dependency_app,
        "/protected": protected_app,
    }
    return OneRouteApps(apps, health_app)
