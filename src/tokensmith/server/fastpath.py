"""The machine-to-machine endpoints through the lightest path: a pure-ASGI front of the FastAPI app.

Token (``POST``, and the ``GET`` refusal), revocation, introspection, the JWKS and both metadata
documents are plain routes (:class:`~tokensmith.server.schemas.DescribedRoute`) whose handlers
take the ``Request`` and return a ``Response``, or, for the three a client posts a form to
(token, revocation, introspection: ``routes/client_form.py``), are written against ASGI and are
the route's app, called with the scope, ``receive`` and ``send`` on both paths. For them,
FastAPI's application and router machinery does nothing but cost (about a tenth of a
``client_credentials`` request): the telemetry check of ``FastAPI.__call__``, the telemetry and
body-limit layers (no-ops unless configured), Starlette's ``ExceptionMiddleware`` with its two
exception wrappers, FastAPI's ``AsyncExitStackMiddleware``, the router's walk over every route
and ``request_response``.

:class:`AuthorizationServerApp` (a ``FastAPI``; ``create_app`` returns one) serves them like
this, with ONE code path (the same route objects, endpoint functions, middleware instances and
exception handlers)::

    FastAPI's stack:  [outer] → ServerErrorMiddleware → telemetry → body limit → [middleware]
                      → Branch (the fast routes, else ExceptionMiddleware → AsyncExitStack →
                      router)
    fast stack:       [outer] → ServerErrorMiddleware (the same 500 handler) → [middleware]
                      → Branch
    ... no [middleware]: [outer] → Branch (answering as the 500 handler would itself)

``[outer]`` is the server's own layers that must see every answer, the 500 handler's included
(``outer_middleware``: ``Observability``, which adds the security headers of
``SecurityHeaders`` too: one layer); ``[middleware]`` is the
app's list (``EndpointCors`` when origins are allowed, and whatever a user adds with
``app.add_middleware``), possibly empty: built once, the same instances in both stacks, so a
user's middleware applies to every request, fast or not, in the place FastAPI gives it. The
branch at its inner end answers a fast route directly (:class:`FastRoutes`): the route's
endpoint, then the app's exception handlers looked up the way Starlette's
``ExceptionMiddleware`` does (``OAuthError`` → JSON error, a store down → 503 with
``Retry-After``); anything unhandled goes up to ``ServerErrorMiddleware``'s 500 JSON handler
and is re-raised for the server to log, as on every other route. When the app has no
middleware of its own (no CORS origin, nothing added), nothing sits between that layer and the
branch, and the branch answers what escapes itself, with that layer's handler and debug
setting (:meth:`FastRoutes.entry`): one coroutine and one ``send`` wrapper fewer per request.

What is fast is decided from the routes themselves when the stack is built (the app's first
ASGI call, normally the lifespan's startup): a ``(path, method)`` pair is fast when the router
would choose the described route for it (the first full match among ``app.routes``). Anything
else — another method (``PUT /token``: the router's 405 with ``Allow``; ``HEAD``), a trailing
slash, another path — goes through FastAPI untouched. Matching uses the path below the
``root_path``, like the router. Routes added after the first call are not seen by the fast
path (they still work through FastAPI).

The fast path steps aside entirely (every request through FastAPI) when FastAPI's own
OpenTelemetry instrumentation is enabled (decided at the first HTTP request, after the
lifespan's startup has configured it) or when a request is already being traced by it, when
the app has a ``max_body_size``, when the app's outermost middleware was added with a factory
that is not a class, or when FastAPI's stack does not have the shape above (a future FastAPI,
or a middleware that hides its inner app): then nothing changes but speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette._exception_handler import _lookup_exception_handler
from starlette._utils import get_route_path, is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.server.schemas import DescribedRoute

__all__ = ["AuthorizationServerApp", "FastRoutes"]

FastTable = dict[tuple[str, str], DescribedRoute]


def resolve(routes: list[BaseRoute], wanted: Iterable[DescribedRoute]) -> FastTable:
    """``(path, method) -> route`` for each of ``wanted``'s methods for which the router would
    pick that very route: the first route of ``routes`` that matches fully."""
    table: FastTable = {}
    for route in wanted:
        for method in sorted(route.methods or ()):
            scope: Scope = {
                "type": "http",
                "path": route.path,
                "root_path": "",
                "method": method,
                "headers": [],
                "query_string": b"",
            }
            for candidate in routes:
                try:
                    match, _ = candidate.matches(scope)
                except Exception:  # a route that needs more of a scope: not a fast path
                    break
                if match is Match.FULL:
                    if candidate is route:
                        table[(route.path, method)] = route
                    break
    return table


class FastRoutes:
    """The inner end of the app's middleware: a fast route answered directly, with the app's
    exception handlers; every other request to ``app`` (``ExceptionMiddleware`` → router).

    The exception handling mirrors Starlette's (``_exception_handler``): the handler of the
    exception's class or nearest base (an ``HTTPException`` first by its status), awaited or
    run in the thread pool, its response sent unless the endpoint's had started (then a
    ``RuntimeError``, as Starlette raises); no handler: re-raised, for ``ServerErrorMiddleware``."""

    def __init__(self, app: ASGIApp, owner: AuthorizationServerApp, table: FastTable) -> None:
        self.app = app
        self.owner = owner
        self.table = table
        self.handlers: dict[Any, Any] = {}
        self.status_handlers: dict[int, Any] = {}
        if isinstance(app, ExceptionMiddleware):
            self.handlers = app._exception_handlers
            self.status_handlers = app._status_handlers

    def match(self, scope: Scope) -> DescribedRoute | None:
        path = get_route_path(scope) if scope.get("root_path") else scope["path"]
        return self.table.get((path, scope["method"]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.match(scope)
            if scope["type"] == "http" and "fastapi.telemetry" not in scope
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        await self.answer(route, scope, receive, send, None)

    def entry(self, server_errors: ServerErrorMiddleware) -> ASGIApp:
        """The fast stack's inner end when no middleware of the app's sits between it and the
        500 handler: a fast route answered by :meth:`answer` with ``server_errors``' handler
        (or debug page) for what no exception handler takes, as that layer would answer it,
        without a layer of its own (one fewer coroutine and ``send`` wrapper per request)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            route = self.match(scope)
            if route is None:  # pragma: no cover - the app only sends fast routes here
                await server_errors(scope, receive, send)
                return
            await self.answer(route, scope, receive, send, server_errors)

        return app

    async def answer(
        self,
        route: DescribedRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        server_errors: ServerErrorMiddleware | None,
    ) -> None:
        """Answer ``route``; ``server_errors``: answer what escapes as that 500 layer does (its
        handler's response unless one has started, then re-raised for the server to log),
        else let it escape to the layer around."""
        # what the router puts in the scope for a matched route
        scope["router"] = self.owner.router
        scope["endpoint"] = route.endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        scope["route"] = route
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        request: Request | None = None
        try:
            try:
                if route.asgi:  # the handler is the route's app (``DescribedRoute``)
                    await route.app(scope, receive, sender)
                else:
                    request = Request(scope, receive, send)
                    response = await route.endpoint(request)
                    await response(scope, receive, sender)
            except Exception as exc:
                if request is None:
                    request = Request(scope, receive, send)
                handler: Any = None
                if isinstance(exc, HTTPException):
                    handler = self.status_handlers.get(exc.status_code)
                if handler is None:
                    handler = _lookup_exception_handler(self.handlers, exc)
                if handler is None:
                    raise
                if started:
                    raise RuntimeError(
                        "Caught handled exception, but response already started."
                    ) from exc
                if is_async_callable(handler):
                    answer = await handler(request, exc)
                else:
                    answer = await run_in_threadpool(handler, request, exc)
                if answer is not None:
                    await answer(scope, receive, sender)
                exc.__traceback__ = None  # as Starlette: a reused exception keeps no old frames
        except Exception as exc:
            if server_errors is None:
                raise
            await _server_error(server_errors, scope, receive, send, exc, started=started)
            raise


async def _server_error(
    layer: ServerErrorMiddleware,
    scope: Scope,
    receive: Receive,
    send: Send,
    exc: Exception,
    *,
    started: bool,
) -> None:
    """What Starlette's ``ServerErrorMiddleware`` answers to ``exc`` (its debug page, its
    default 500, or the app's handler of ``500`` / ``Exception``), unless a response has
    started."""
    request = Request(scope)
    handler: Any = layer.handler
    response: Any
    if layer.debug:
        response = await run_in_threadpool(layer.debug_response, request, exc)
    elif handler is None:
        response = layer.error_response(request, exc)
    elif is_async_callable(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    if not started:
        await response(scope, receive, send)


class AuthorizationServerApp(FastAPI):
    """A ``FastAPI`` app whose machine-to-machine routes (``fast_routes``) skip the framework's
    application and router layers (module docstring); everything else is FastAPI's."""

    fast_routes: tuple[DescribedRoute, ...] = ()
    """Set by ``create_app``: the routes to serve through the fast stack."""

    outer_middleware: tuple[Middleware, ...] = ()
    """Set by ``create_app``: the server's own layers that wrap everything, the 500 handler
    included (the first outermost): request id and metrics, security headers. Every answer
    passes through them: a 500, a CORS preflight, a user middleware's own refusal."""

    _fast_stack: ASGIApp | None = None
    _fast_branch: FastRoutes | None = None
    _fast_decided: bool = False

    def _outer(self, app: ASGIApp) -> ASGIApp:
        for cls, args, kwargs in reversed(self.outer_middleware):
            app = cls(app, *args, **kwargs)
        return app

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._fast_stack = self._fast_branch = None
        self._fast_decided = False
        if getattr(self, "max_body_size", None) is not None or not isinstance(
            stack, ServerErrorMiddleware
        ):
            return self._outer(stack)
        # Walk FastAPI's layers down to the app's first middleware (if any), then to the layer
        # that wraps ExceptionMiddleware; both must be where FastAPI puts them.
        classes = [m.cls for m in self.user_middleware]
        if classes and not isinstance(classes[0], type):
            # a factory that is no class (a function, a functools.partial): its layer cannot
            # be told by its class, so the first middleware is not found; no fast path
            return self._outer(stack)
        layer: Any = stack
        first: Any = None
        while layer is not None and not isinstance(layer, ExceptionMiddleware):
            if first is None and classes and isinstance(layer, classes[0]):  # type: ignore[arg-type]
                first = layer
            parent, layer = layer, getattr(layer, "app", None)
        if layer is None or (classes and first is None) or parent is stack:
            return self._outer(stack)
        table = resolve(self.router.routes, self.fast_routes)
        if not table:
            return self._outer(stack)
        branch = FastRoutes(layer, self, table)
        parent.app = branch
        self._fast_branch = branch
        if first is None:
            # the 500 layer's answers (handler, debug page), given to the branch; the layer
            # itself is not in the fast stack
            server_errors = ServerErrorMiddleware(
                stack.app, handler=stack.handler, debug=stack.debug
            )
            self._fast_stack = self._outer(branch.entry(server_errors))
        else:
            self._fast_stack = self._outer(
                ServerErrorMiddleware(first, handler=stack.handler, debug=stack.debug)
            )
        return self._outer(stack)

    def _decide(self) -> None:
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        telemetry = getattr(self, "_native_telemetry", None)
        if telemetry is not None and telemetry.enabled():
            self._fast_stack = None  # FastAPI traces every request: it keeps them all
        self._fast_decided = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "fastapi.telemetry" not in scope:
            if not self._fast_decided:
                self._decide()
            if self._fast_stack is not None and self._fast_branch is not None:
                if self.root_path:
                    scope["root_path"] = self.root_path
                if self._fast_branch.match(scope) is not None:
                    scope["app"] = self
                    await self._fast_stack(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)
