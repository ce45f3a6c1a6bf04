"""The machine-to-machine endpoints are served by the fast path (``server/fastpath.py``): FastAPI's
router never sees them, and every answer is the one the framework path gives (status, headers,
body), errors, limits, CORS and metrics included.

Each request is sent as raw ASGI to two apps on the same database: the one ``create_app``
returns, and the same app with no fast routes (everything through FastAPI, as before)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.server.harness import ServerEnv, basic
from tests.support.asgi import http_scope
from tests.support.clients import machine, resource_server
from tokensmith.core.clock import FakeClock
from tokensmith.server.app import create_app
from tokensmith.server.fastpath import AuthorizationServerApp
from tokensmith.server.routes import token as token_route
from tokensmith.settings import Settings

SPA = "https://spa.example"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def shape(self) -> tuple[int, list[tuple[str, str]], Any]:
        """What must be equal on both paths: the status, every header (the request id's and
        the length's values vary), and the body (a token answer: its members)."""
        headers = sorted(
            (k, "*" if k in ("x-request-id", "content-length") else v) for k, v in self.headers
        )
        body: Any = self.body
        if self.header("content-type") == "application/json":
            body = json.loads(self.body)
            if isinstance(body, dict) and "access_token" in body:
                body = sorted(body)
        return self.status, headers, body


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    stall: bool = False,
) -> Answer:
    """One request as the server would hand it over; ``stall``: the body never arrives."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body or method == "POST":
        raw.append((b"content-length", str(len(body)).encode()))
    scope = http_scope(
        method,
        path,
        [(b"host", b"127.0.0.1:8000"), *raw],
        scheme="http",
        server=("127.0.0.1", 8000),
    )
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if stall or sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    try:
        await app(scope, receive, send)
    except Exception:
        # ServerErrorMiddleware re-raises what it answered 500 to, for the server to log
        if not messages:
            raise
    start = messages[0]
    assert start["type"] == "http.response.start"
    return Answer(
        start["status"],
        [(k.decode(), v.decode()) for k, v in start.get("headers", [])],
        b"".join(m.get("body", b"") for m in messages[1:]),
    )


@asynccontextmanager
async def framework_app(
    settings: Settings, clock: FakeClock, cors_origins: list[str] | None = None
) -> AsyncIterator[Any]:
    """The same server with no fast routes: every request through FastAPI's stack (CORS for
    ``SPA`` unless ``cors_origins`` says otherwise)."""
    app = create_app(
        settings, clock=clock, cors_origins=[SPA] if cors_origins is None else cors_origins
    )
    assert isinstance(app, AuthorizationServerApp)
    app.fast_routes = ()
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def router_calls(app: Any) -> AsyncIterator[list[tuple[str, str]]]:
    """The (method, path) of every request FastAPI's router is handed."""
    seen: list[tuple[str, str]] = []
    inner = app.router.middleware_stack

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((scope["method"], scope["path"]))
        await inner(scope, receive, send)

    app.router.middleware_stack = spy
    try:
        yield seen
    finally:
        app.router.middleware_stack = inner


@pytest.fixture
async def pair(settings: Settings, clock: FakeClock) -> AsyncIterator[tuple[ServerEnv, Any]]:
    """The fast app (in a ServerEnv, with an allowed CORS origin) and the framework app."""
    quick = settings.model_copy(update={"form_read_timeout": 0.3})
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(ServerEnv.start(quick, clock, cors_origins=[SPA]))
        slow = await stack.enter_async_context(framework_app(quick, clock))
        yield env, slow


@pytest.fixture(params=["cors", "plain"])
async def either_pair(
    request: pytest.FixtureRequest, settings: Settings, clock: FakeClock
) -> AsyncIterator[tuple[ServerEnv, Any]]:
    """As ``pair`` ("cors"), or with no CORS origin ("plain"): no middleware of the app's between
    the 500 handler and the fast routes, so the fast path answers what escapes itself
    (``FastRoutes.entry``)."""
    origins = [SPA] if request.param == "cors" else []
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(
            ServerEnv.start(settings, clock, cors_origins=origins)
        )
        slow = await stack.enter_async_context(framework_app(settings, clock, origins))
        yield env, slow


def _layers(app: Any) -> list[type]:
    """The classes of the layers of an ASGI stack, outermost first (each one's ``app``)."""
    layers = []
    while app is not None and not inspect.isfunction(app):  # the fast routes' entry ends it
        layers.append(type(app))
        app = getattr(app, "app", None)
    return layers


async def test_with_no_middleware_the_fast_path_is_two_layers(
    either_pair: tuple[ServerEnv, Any],
) -> None:
    """The server's own layer (request id, metrics, security headers), then the fast route:
    no 500 layer of its own (the fast path answers like it, tested below). With a middleware of
    the app's in between (CORS here), the 500 layer stays around it."""
    from starlette.middleware.errors import ServerErrorMiddleware

    from tokensmith.server.observability import Observability

    env, _ = either_pair
    await call(env.app, "GET", env.settings.jwks_path)  # the stacks are built
    if env.app.user_middleware:
        assert _layers(env.app._fast_stack)[:2] == [Observability, ServerErrorMiddleware]
    else:
        assert _layers(env.app._fast_stack) == [Observability]


def requests(
    env: ServerEnv, worker: str, introspector: str
) -> list[tuple[str, Callable[[Any], Any]]]:
    s = env.settings
    form = {"content-type": FORM, "authorization": worker}
    cc = b"grant_type=client_credentials&scope=docs:read"
    return [
        ("token", lambda app: call(app, "POST", s.token_path, headers=form, body=cc)),
        (
            "token from an allowed origin",
            lambda app: call(app, "POST", s.token_path, headers={**form, "origin": SPA}, body=cc),
        ),
        (
            "token, bad secret",
            lambda app: call(
                app,
                "POST",
                s.token_path,
                headers={**form, "authorization": basic("nobody", "wrong")},
                body=cc,
            ),
        ),
        ("GET token: 405", lambda app: call(app, "GET", s.token_path)),
        ("PUT token: the router's 405", lambda app: call(app, "PUT", s.token_path)),
        ("HEAD jwks: the router's 405", lambda app: call(app, "HEAD", s.jwks_path)),
        (
            "token, body too large: 413",
            lambda app: call(
                app, "POST", s.token_path, headers=form, body=b"a=" + b"x" * s.max_form_bytes
            ),
        ),
        (
            "token, slow body: 408",
            lambda app: call(app, "POST", s.token_path, headers=form, body=cc, stall=True),
        ),
        (
            "revoke",
            lambda app: call(app, "POST", s.revoke_path, headers=form, body=b"token=abc"),
        ),
        (
            "introspect",
            lambda app: call(
                app,
                "POST",
                s.introspect_path,
                headers={**form, "authorization": introspector},
                body=b"token=abc",
            ),
        ),
        ("metadata", lambda app: call(app, "GET", "/.well-known/oauth-authorization-server")),
        ("openid", lambda app: call(app, "GET", "/.well-known/openid-configuration")),
        ("jwks", lambda app: call(app, "GET", s.jwks_path)),
        (
            "preflight",
            lambda app: call(
                app,
                "OPTIONS",
                s.token_path,
                headers={"origin": SPA, "access-control-request-method": "POST"},
            ),
        ),
    ]


FAST = {
    "token",
    "token from an allowed origin",
    "token, bad secret",
    "GET token: 405",
    "token, body too large: 413",
    "token, slow body: 408",
    "revoke",
    "introspect",
    "metadata",
    "openid",
    "jwks",
}


async def test_the_machine_endpoints_skip_the_router_and_answer_alike(
    pair: tuple[ServerEnv, Any],
) -> None:
    env, framework = pair
    worker = await machine(env)
    reader = await resource_server(env)
    assert worker.client_secret
    assert reader.client_secret
    cases = requests(
        env,
        basic(worker.client.client_id, worker.client_secret),
        basic(reader.client.client_id, reader.client_secret),
    )
    for name, send in cases:
        async with router_calls(env.app) as fast_seen, router_calls(framework) as slow_seen:
            fast, slow = await send(env.app), await send(framework)
        # the comparison app routes everything the CORS middleware does not answer itself
        assert bool(slow_seen) is (name != "preflight"), name
        assert bool(fast_seen) is (name not in FAST and name != "preflight"), name
        assert fast.shape() == slow.shape(), name
        # the same fields in the same order (``shape`` sorts them)
        assert [k for k, _ in fast.headers] == [k for k, _ in slow.headers], name
        if name != "preflight":  # answered by the CORS middleware, outside the others
            assert fast.header("x-content-type-options") == "nosniff", name
            assert fast.headers[-1][0] == "x-request-id", name
    by_name = {name: send for name, send in cases}
    token = await by_name["token"](env.app)
    assert token.status == 200
    # the endpoint's own fields, CORS's, then the security headers, then the request id
    assert [k for k, _ in token.headers] == [
        "cache-control",
        "pragma",
        "content-length",
        "content-type",
        "vary",
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
        *(["strict-transport-security"] if env.settings.is_https else []),
        "content-security-policy",
        "x-request-id",
    ]
    assert json.loads(token.body)["token_type"] == "Bearer"
    assert (await by_name["token from an allowed origin"](env.app)).header(
        "access-control-allow-origin"
    ) == SPA
    refused = await by_name["GET token: 405"](env.app)
    assert (refused.status, refused.header("allow")) == (405, "POST")
    assert json.loads(refused.body)["error"] == "invalid_request"
    assert (await by_name["token, body too large: 413"](env.app)).status == 413
    late = await by_name["token, slow body: 408"](env.app)
    assert (late.status, late.header("connection")) == (408, "close")
    assert (await by_name["preflight"](env.app)).status == 204


async def test_metrics_count_the_fast_routes_by_route(pair: tuple[ServerEnv, Any]) -> None:
    env, _ = pair
    worker = await machine(env)
    assert worker.client_secret
    await env.token(worker, {"grant_type": "client_credentials"})
    await call(env.app, "GET", env.settings.jwks_path)
    text = (await env.http.get("/metrics")).text
    assert 'tokensmith_http_requests_total{method="POST",route="/token",status="200"} 1.0' in text
    assert 'tokensmith_http_requests_total{method="GET",route="/jwks.json",status="200"}' in text
    assert 'tokensmith_tokens_issued_total{grant_type="client_credentials"} 1.0' in text


async def failing_token_answers(
    pair: tuple[ServerEnv, Any],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    *,
    debug: bool = False,
) -> tuple[str, tuple[Answer, Answer]]:
    """The answers of the fast app and of the framework app (in that order) to a
    ``client_credentials`` request whose token endpoint raises ``error``; ``debug``: with the
    apps' debug setting on (their stacks are built again). Also the request's Basic
    credentials."""
    env, framework = pair
    worker = await machine(env)
    assert worker.client_secret
    auth = basic(worker.client.client_id, worker.client_secret)

    async def fail(*args: object, **kwargs: object) -> None:
        raise error

    answers = []
    for app in (env.app, framework):
        if debug:
            app.debug = True
        monkeypatch.setattr(app.state.runtime.server.token_endpoint, "handle", fail)
        answers.append(
            await call(
                app,
                "POST",
                env.settings.token_path,
                headers={"content-type": FORM, "authorization": auth},
                body=b"grant_type=client_credentials",
            )
        )
    return auth, (answers[0], answers[1])


@pytest.mark.parametrize(
    ("error", "status"),
    [(RedisConnectionError("redis is down"), 503), (RuntimeError("a bug"), 500)],
)
async def test_errors_of_the_stores_and_bugs_are_answered_alike(
    either_pair: tuple[ServerEnv, Any],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
) -> None:
    """A store down: 503 with ``Retry-After`` (the app's handler); a bug: the 500 JSON error of
    the app's ``Exception`` handler, no stack trace, and the exception re-raised for the
    server's log — on both paths, with a middleware of the app's around the fast routes (CORS)
    and without one (the fast path answers the 500 itself)."""
    env, _ = either_pair
    auth, (fast, slow) = await failing_token_answers(either_pair, monkeypatch, error)
    assert fast.shape() == slow.shape()
    assert fast.status == status
    body = json.loads(fast.body)
    assert body["error"] == ("temporarily_unavailable" if status == 503 else "server_error")
    assert "Traceback" not in fast.body.decode()
    assert "a bug" not in fast.body.decode()
    assert (fast.header("retry-after") == "2") is (status == 503)
    if status == 500:  # answered, then re-raised for the server's log, on the fast path too
        with pytest.raises(RuntimeError, match="a bug"):
            await raw_token_request(env.app, env.settings, auth, messages := [])
        assert messages[0]["status"] == 500


async def test_an_error_after_the_answer_started_is_re_raised_and_not_answered_twice(
    either_pair: tuple[ServerEnv, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception once the endpoint has sent its response's start: no second start (the
    500 handler stays out), the exception re-raised for the server's log, on both paths."""
    env, framework = either_pair
    worker = await machine(env)
    assert worker.client_secret
    auth = basic(worker.client.client_id, worker.client_secret)

    async def half_sent(send: Any, body: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug after the start")

    monkeypatch.setattr(token_route, "send_json", half_sent)
    for app in (env.app, framework):
        messages: list[Any] = []
        with pytest.raises(RuntimeError, match="a bug after the start"):
            await raw_token_request(app, env.settings, auth, messages)
        assert [m["type"] for m in messages] == ["http.response.start"], app
        assert messages[0]["status"] == 200


async def raw_token_request(app: Any, settings: Settings, auth: str, messages: list[Any]) -> None:
    """A ``client_credentials`` request sent to ``app`` as the server would hand it over, with
    what the app sends kept in ``messages`` and what it raises left to the caller (``call``
    swallows it)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"grant_type=client_credentials"}

    async def keep(message: Any) -> None:
        messages.append(message)

    headers = [(b"content-type", FORM.encode()), (b"authorization", auth.encode())]
    await app(http_scope("POST", settings.token_path, headers, scheme="http"), receive, keep)


async def test_the_debug_page_of_a_bug_is_answered_alike(
    either_pair: tuple[ServerEnv, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``debug`` on, a bug is answered with Starlette's debug page (the traceback), on the
    fast path as through FastAPI's stack."""
    _, (fast, slow) = await failing_token_answers(
        either_pair, monkeypatch, RuntimeError("a bug in debug"), debug=True
    )
    assert fast.status == slow.status == 500
    assert [k for k, _ in fast.headers] == [k for k, _ in slow.headers]
    assert fast.header("content-type") == slow.header("content-type")
    assert (fast.header("content-type") or "").startswith("text/plain")
    assert "RuntimeError: a bug in debug" in fast.body.decode()
    assert fast.headers[-1][0] == "x-request-id"


async def test_a_middleware_added_by_the_user_applies_to_the_fast_routes(
    settings: Settings, clock: FakeClock
) -> None:
    """``app.add_middleware`` on the returned app wraps every request, fast or not, in the
    place FastAPI gives it (outside the server's own middleware)."""
    app = create_app(settings, clock=clock)
    seen: list[str] = []

    class Tag:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])

                async def tagged(message: Any) -> None:
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message["headers"], (b"x-tag", b"1")]
                    await send(message)

                await self.app(scope, receive, tagged)
                return
            await self.app(scope, receive, send)

    app.add_middleware(Tag)
    async with app.router.lifespan_context(app), router_calls(app) as routed:
        jwks = await call(app, "GET", settings.jwks_path)
        health = await call(app, "GET", "/healthz")
    assert seen == [settings.jwks_path, "/healthz"]
    assert routed == [("GET", "/healthz")]
    assert jwks.status == 200
    assert jwks.header("x-tag") == "1"
    assert health.header("x-tag") == "1"
    assert jwks.header("x-request-id")
    assert jwks.header("referrer-policy") == "no-referrer"


async def test_a_middleware_factory_that_is_not_a_class_applies_too(
    settings: Settings, clock: FakeClock
) -> None:
    """Starlette takes any callable as a middleware factory (a ``functools.partial``, a
    function): the app serves every request with it, fast routes included (looking for the
    app's first middleware by its class raised ``TypeError`` on every request)."""

    class Tag:
        def __init__(self, app: Any, *, value: bytes) -> None:
            self.app = app
            self.value = value

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def tagged(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message["headers"], (b"x-tag", self.value)]
                await send(message)

            await self.app(scope, receive, tagged)

    app = create_app(settings, clock=clock)
    app.add_middleware(functools.partial(Tag, value=b"1"))
    async with app.router.lifespan_context(app):
        jwks = await call(app, "GET", settings.jwks_path)
        health = await call(app, "GET", "/healthz")
    assert (jwks.status, health.status) == (200, 200)
    assert jwks.header("x-tag") == health.header("x-tag") == "1"
    assert jwks.header("x-request-id")


async def test_root_path_and_routes_that_shadow_are_respected(
    settings: Settings, clock: FakeClock
) -> None:
    """Under a ``root_path`` the fast routes match the path below it, like the router; a route
    put before the server's own wins, as in the router, and takes its path off the fast path."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def mine(request: Any) -> PlainTextResponse:
        return PlainTextResponse("mine")

    app = create_app(settings, clock=clock, cors_origins=[])
    app.router.routes.insert(0, Route(settings.jwks_path, mine, methods=["GET"]))
    app.root_path = "/auth"
    async with app.router.lifespan_context(app), router_calls(app) as routed:
        shadowed = await call(app, "GET", "/auth" + settings.jwks_path)
        metadata = await call(app, "GET", "/auth/.well-known/oauth-authorization-server")
    assert shadowed.body == b"mine"
    assert metadata.status == 200
    assert json.loads(metadata.body)["issuer"] == settings.issuer
    assert routed == [("GET", "/auth" + settings.jwks_path)]
