"""FastAPI integration: bearer-token dependencies with RFC 6750 errors.

``ResourceServer(validator, ...)`` declares an OAuth 2.0 authorization-code security scheme (so
Swagger UI's "Authorize" button runs the code flow with PKCE) and hands out dependencies:

    rs = ResourceServer(validator, authorization_url=..., token_url=..., scopes={...})
    ReadPrincipal = Annotated[Principal, rs.require_scopes("docs:read")]

Errors (RFC 6750 §3): no bearer token -> 401 ``WWW-Authenticate: Bearer realm="..."`` without an
error code; an invalid token -> 401 ``error="invalid_token"``; a missing scope -> 403
``error="insufficient_scope", scope="..."``. With ``protected_resource=`` (RFC 9728), every
challenge also carries ``resource_metadata="<metadata URL>"`` (RFC 9728 §5.1) and a 401 of a route
that needs scopes names them in ``scope="..."``, so a client learns where to get a token and
what to ask for; :func:`protected_resource_router` serves the metadata document.

Tokens are read from the ``Authorization`` header only; ``?access_token=`` is ignored (OAuth 2.1
§5.1, BCP-33). Tokens are never logged, only a 12-hex-digit SHA-256 prefix.

The dependency FastAPI calls is itself the security scheme (a :class:`SecurityBase` carrying the
OAuth2 model): FastAPI lists it in the OpenAPI document like ``OAuth2AuthorizationCodeBearer``,
and a request runs one dependency that reads the header once, not that scheme's ``__call__``
(a second dependency, which parsed the header a second time) beneath it.

No ``from __future__ import annotations`` here: FastAPI reads the dependency's annotations.
"""

import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import fastapi.routing
from fastapi import APIRouter, HTTPException, Request, Security, WebSocketException
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2AuthorizationCodeBearer, SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.types import ASGIApp, Receive, Scope, Send

from ._util import token_fingerprint
from .errors import InsufficientScopeError, InvalidRequestError, InvalidTokenError, ResourceError
from .principal import Principal
from .protected_resource import WELL_KNOWN_PROTECTED_RESOURCE, ProtectedResource
from .validator import Validator

__all__ = ["BearerRoute", "ResourceServer", "bearer_token", "protected_resource_router"]

logger = logging.getLogger("tokensmith.resource")

# RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
_BEARER_PREFIXES = (b"Bearer ", b"bearer ")


def is_b64token(value: str) -> bool:
    """True when ``value`` is an RFC 6750 §2.1 ``b64token``.

    The same test as the regular expression ``[A-Za-z0-9\\-._~+/]+=*`` (fully matched), in two
    C-level byte operations: half the time of the regex on a JWT, on every protected request.
    """
    if not value.isascii():
        return False
    body = value.encode("ascii").rstrip(b"=")
    return bool(body) and not body.translate(None, _B64TOKEN_CHARS)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_token(request: HTTPConnection) -> str | None:
    """The bearer token of the ``Authorization`` header; None when there is none.

    The scheme is case-insensitive (RFC 7235 §2.1). Raises :class:`InvalidRequestError` for two
    ``Authorization`` headers and :class:`InvalidTokenError` for a malformed token.
    """
    # the ASGI header list itself (names are lower-case bytes, as ``request.headers.getlist``
    # compares them), values decoded as Latin-1 like Starlette's ``Headers``
    value: bytes | None = None
    for name, raw in request.scope["headers"]:
        if name == b"authorization":
            if value is not None:
                raise InvalidRequestError("more than one Authorization header")
            value = raw
    if value is None:
        return None
    # What clients send: "Bearer " and the token, nothing around it. Taken from the bytes when
    # what follows the scheme is a b64token exactly (the general reading below gives the same
    # token then); anything else, however rare, takes the general reading.
    if value.startswith(_BEARER_PREFIXES):
        given = value[7:]
        body = given.rstrip(b"=")
        if body and not body.translate(None, _B64TOKEN_CHARS):
            return given.decode("ascii")
    scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if not is_b64token(token):
        raise InvalidTokenError("malformed bearer token")
    return token


class ResourceServer:
    """Bearer-token protection for FastAPI routes, backed by a :class:`Validator`.

    ``authorization_url``/``token_url`` are the authorization server's endpoints, shown to Swagger
    UI; ``scopes`` maps each scope to a description for the OpenAPI document.
    ``protected_resource`` (RFC 9728): when set, challenges point to its metadata document.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        authorization_url: str = "/authorize",
        token_url: str = "/token",
        refresh_url: str | None = None,
        scopes: dict[str, str] | None = None,
        scheme_name: str = "OAuth2",
        description: str | None = "OAuth 2.0 authorization code flow with PKCE (S256).",
        protected_resource: ProtectedResource | None = None,
    ) -> None:
        self.validator = validator
        self.realm = realm
        self.protected_resource = protected_resource
        self.scheme = OAuth2AuthorizationCodeBearer(
            authorizationUrl=authorization_url,
            tokenUrl=token_url,
            refreshUrl=refresh_url,
            scheme_name=scheme_name,
            scopes=scopes or {},
            description=description,
            auto_error=False,
        )
        self._principal_dependency = _PrincipalDependency(self)

    def challenge(self, error: ResourceError | None = None, *, scopes: Iterable[str] = ()) -> str:
        """The ``WWW-Authenticate`` value for ``error`` (None: no token was presented).

        ``scopes``: what the request needs; named in ``scope="..."`` of a 401 when this server
        has a protected resource (RFC 6750 §3, RFC 9728 §5.1: the client then knows what to
        request). A 403 ``insufficient_scope`` always names the scopes needed (step-up).
        """
        parts = [f"realm={_quote(self.realm)}"]
        needed = sorted(set(scopes))
        if error is not None and error.status_code != 503:
            parts.append(f"error={_quote(error.error)}")
            if isinstance(error, InsufficientScopeError):
                needed = sorted(error.required)
                parts.append(f"scope={_quote(' '.join(needed))}")
        if self.protected_resource is not None:
            status = 401 if error is None else error.status_code
            if status == 401 and needed:
                parts.append(f"scope={_quote(' '.join(needed))}")
            parts.append(f"resource_metadata={_quote(self.protected_resource.metadata_url)}")
        return "Bearer " + ", ".join(parts)

    def http_error(
        self, error: ResourceError | None, *, scopes: Iterable[str] = ()
    ) -> HTTPException:
        """The HTTPException FastAPI renders for ``error`` (None: no token)."""
        status = 401 if error is None else error.status_code
        headers = {
            "WWW-Authenticate": self.challenge(error, scopes=scopes),
            "Cache-Control": "no-store",
        }
        if status == 503:
            headers["Retry-After"] = "5"
        detail = "missing_token" if error is None else error.error
        return HTTPException(status_code=status, detail=detail, headers=headers)

    async def authenticate(
        self, request: HTTPConnection, required: Iterable[str] = ()
    ) -> Principal:
        """Validate the request's bearer token and check ``required`` scopes; raise HTTP errors.

        ``request``: an HTTP request or a WebSocket handshake (the dependencies refuse the
        latter with a 1008 close, see :class:`_PrincipalDependency`)."""
        needed = frozenset(required)
        try:
            token = bearer_token(request)
        except ResourceError as exc:
            logger.info("bearer token refused: %s", exc.detail)
            raise self.http_error(exc, scopes=needed) from None
        if token is None:
            raise self.http_error(None, scopes=needed)
        try:
            principal = await self.validator.validate(token)
        except ResourceError as exc:
            log = logger.warning if exc.status_code >= 500 else logger.info
            log("token %s refused: %s", token_fingerprint(token), exc.detail)
            raise self.http_error(exc, scopes=needed) from None
        except Exception:
            # a validator bug must not turn into a 500 carrying details, nor accept the token
            logger.exception("token %s: validator failed", token_fingerprint(token))
            failed = InvalidTokenError("validator failed")
            raise self.http_error(failed, scopes=needed) from None
        if not principal.scopes.issuperset(needed):
            error = InsufficientScopeError(
                f"missing scopes {sorted(needed - principal.scopes)}", required=needed
            )
            logger.info("token %s: %s", token_fingerprint(token), error.detail)
            raise self.http_error(error)
        return principal

    def require_scopes(self, *scopes: str) -> Any:
        """A ``Security`` dependency yielding the :class:`Principal` when it has all ``scopes``.

        Use it as ``Annotated[Principal, rs.require_scopes("docs:read")]`` or in
        ``dependencies=[...]``; OpenAPI lists the scopes on the operation.
        """
        return Security(self._principal_dependency, scopes=list(scopes))

    @property
    def authenticated(self) -> Any:
        """A dependency yielding the :class:`Principal` of any valid token (no scope needed)."""
        return Security(self._principal_dependency, scopes=[])

    def protect(self, app: ASGIApp, *scopes: str) -> ASGIApp:
        """``app`` (any ASGI app, e.g. an MCP server's) behind this server's bearer check.

        Every HTTP request needs a valid token with all ``scopes``; refused requests get the
        same 400/401/403/503 answers (and ``WWW-Authenticate``) as the FastAPI dependencies,
        and never reach ``app``. An accepted request reaches ``app`` with its
        :class:`Principal` in ``request.state.principal`` (ASGI ``scope["state"]``).
        Lifespan and other non-HTTP events pass through untouched; WebSockets are refused.
        """
        required = frozenset(scopes)

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await app(scope, receive, send)
                return
            if scope["type"] != "http":
                # a WebSocket handshake: closing before accept answers 403 (ASGI spec)
                await send({"type": "websocket.close", "code": 1008})
                return
            request = Request(scope)
            try:
                principal = await self.authenticate(request, required)
            except HTTPException as exc:
                # the body FastAPI gives the dependencies' refusals: {"detail": "<error code>"}
                response = JSONResponse(
                    {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
                )
                await response(scope, receive, send)
                return
            state = dict(scope.get("state") or {})
            state["principal"] = principal
            await app({**scope, "state": state}, receive, send)

        return guarded


class _PrincipalDependency(SecurityBase):
    """The :class:`Principal` dependency of a :class:`ResourceServer`, and its OpenAPI security
    scheme (the model and name of ``server.scheme``): one dependency per request."""

    def __init__(self, server: ResourceServer) -> None:
        self.server = server
        self.model = server.scheme.model
        self.scheme_name = server.scheme.scheme_name

    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> Principal:
        if connection.scope["type"] != "websocket":
            return await self.server.authenticate(connection, security_scopes.scopes)
        # A WebSocket route: the handshake's Authorization header, checked the same way. A
        # refusal closes the handshake with 1008 (policy violation) and the error code as the
        # reason: the server answers the handshake with 403, before anything is accepted.
        try:
            return await self.server.authenticate(connection, security_scopes.scopes)
        except HTTPException as exc:
            raise WebSocketException(WS_1008_POLICY_VIOLATION, reason=str(exc.detail)) from None


# The scope key under which BearerRoute hands the Principal to the endpoint's wrapper.
_PRINCIPAL_KEY = "tokensmith.principal"
# The parameter name under which the wrapper receives the Request when the endpoint takes none.
_REQUEST_PARAM = "_tokensmith_bearer_request"

_Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _declared_scopes(dependant: Dependant) -> list[str]:
    """The scopes a ``Security(...)`` sub-dependency of an endpoint asks for.

    Recent FastAPI releases keep them as ``parent_oauth_scopes`` + ``own_oauth_scopes``; older
    ones as one ``security_scopes`` list (only the installed release is tested)."""
    if hasattr(dependant, "own_oauth_scopes"):
        inherited = list(getattr(dependant, "parent_oauth_scopes", None) or [])
        return inherited + list(dependant.own_oauth_scopes or [])
    return list(getattr(dependant, "security_scopes", None) or [])


class BearerRoute(APIRoute):
    """An ``APIRoute`` that checks a :class:`ResourceServer` token before FastAPI's dependencies.

    Use it as the route class of the app or of a router::

        app = FastAPI()
        app.router.route_class = BearerRoute      # before the routes are declared
        router = APIRouter(route_class=BearerRoute)

    Routes declared the usual way (``Annotated[Principal, rs.require_scopes(...)]``,
    ``dependencies=[rs.require_scopes(...)]``, ``rs.authenticated``) then keep their OpenAPI
    description, errors and ``Principal`` exactly, but the token is checked by the route itself,
    before the body is read, and FastAPI does not solve the dependency: on this machine, any
    FastAPI dependency costs ~10 % of a small route (docs/performance.md).

    The token is checked before anything else of the request: before the body is read and
    before the route's other dependencies run, even those listed before it.

    The route falls back to FastAPI's own resolution, unchanged, when the dependency is
    overridden (``app.dependency_overrides``), when two resource servers guard one route, and
    for endpoints that are not plain functions or coroutine functions (generators, callable
    objects). A ``ResourceServer`` dependency nested inside another dependency is solved by
    FastAPI as before.
    """

    def get_route_handler(self) -> _Handler:
        standard = super().get_route_handler()
        # Recent FastAPI releases build the handler of a route included in a router (with the
        # inclusion's dependencies) under a context variable; older ones copy the route.
        context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
        context = context_var.get() if context_var is not None else None
        route: Any = self
        if context is not None and getattr(context, "original_route", None) is self:
            route = context
        dependant: Dependant | None = route.dependant
        if dependant is None:
            return standard
        guards = [d for d in dependant.dependencies if isinstance(d.call, _PrincipalDependency)]
        servers = {id(guard.call.server) for guard in guards}  # type: ignore[union-attr]
        endpoint = dependant.call
        if not guards or len(servers) != 1 or endpoint is None:
            return standard
        target = inspect.unwrap(endpoint)
        if (
            not inspect.isroutine(target)
            or inspect.isgeneratorfunction(target)
            or inspect.isasyncgenfunction(target)
        ):
            return standard
        # each dependency's Principal goes to its parameter (None: a route-level dependency)
        named = [(index, guard.name) for index, guard in enumerate(guards) if guard.name]
        own_request = dependant.request_param_name is None
        request_name = dependant.request_param_name or _REQUEST_PARAM
        call = _bind_principal(endpoint, named, request_name, own_request)
        _name_endpoint_in_errors(call, endpoint)
        stripped = dataclasses.replace(
            dependant,
            dependencies=[d for d in dependant.dependencies if not any(d is g for g in guards)],
            call=call,
            request_param_name=request_name,
        )
        route.dependant = stripped
        try:
            inner = super().get_route_handler()
        finally:
            route.dependant = dependant
        guard_calls = [guard.call for guard in guards]
        server: ResourceServer = guards[0].call.server  # type: ignore[union-attr]
        scope_sets = [frozenset(_declared_scopes(guard)) for guard in guards]
        provider = route.dependency_overrides_provider

        if len(guards) == 1:
            guard_call, needed = guard_calls[0], scope_sets[0]

            async def checked(request: Request) -> Response:
                overrides = getattr(provider, "dependency_overrides", None)
                if overrides and guard_call in overrides:
                    return await standard(request)
                request.scope[_PRINCIPAL_KEY] = (await server.authenticate(request, needed),)
                return await inner(request)

            return checked

        async def handler(request: Request) -> Response:
            overrides = getattr(provider, "dependency_overrides", None)
            if overrides and any(call in overrides for call in guard_calls):
                return await standard(request)
            if len(scope_sets) == 1:
                principals = [await server.authenticate(request, scope_sets[0])]
            else:
                # like FastAPI: each dependency in its order (the same first refusal), those
                # asking for the same scopes solved once; authenticate() is called for each, so
                # a subclass's own checks (step-up, ...) hold for every dependency
                solved: dict[frozenset[str], Principal] = {}
                principals = []
                for needed in scope_sets:
                    if needed not in solved:
                        solved[needed] = await server.authenticate(request, needed)
                    principals.append(solved[needed])
            request.scope[_PRINCIPAL_KEY] = principals
            return await inner(request)

        return handler


def _bind_principal(
    endpoint: Callable[..., Any],
    named: list[tuple[int, str]],
    request_name: str,
    own_request: bool,
) -> Callable[..., Any]:
    """``endpoint`` called with the checked Principals: for each ``(index, name)`` of ``named``,
    the route's ``index``-th ResourceServer dependency's under ``name``.

    The Principals come from the request's scope (``request_name`` is the Request parameter;
    ``own_request``: ours, dropped before the call). The wrapper carries the endpoint's
    attributes (``functools.update_wrapper``), so FastAPI classifies it as it classifies the
    endpoint: a plain function runs in the thread pool, response validation included."""

    def arguments(values: dict[str, Any]) -> dict[str, Any]:
        request = values.pop(request_name) if own_request else values[request_name]
        principals = request.scope[_PRINCIPAL_KEY]
        for index, name in named:
            values[name] = principals[index]
        return values

    if inspect.iscoroutinefunction(endpoint) and own_request and len(named) == 1:
        # the usual route: one Principal parameter, no Request of its own (one step less)
        [(index, principal_name)] = named

        async def call_principal(**values: Any) -> Any:
            values[principal_name] = values.pop(request_name).scope[_PRINCIPAL_KEY][index]
            return await endpoint(**values)

        return functools.update_wrapper(call_principal, endpoint)

    if inspect.iscoroutinefunction(endpoint):

        async def call_async(**values: Any) -> Any:
            return await endpoint(**arguments(values))

        return functools.update_wrapper(call_async, endpoint)

    def call(**values: Any) -> Any:
        return endpoint(**arguments(values))

    return functools.update_wrapper(call, endpoint)


def _name_endpoint_in_errors(call: Callable[..., Any], endpoint: Callable[..., Any]) -> None:
    """FastAPI names the endpoint's file, line and function in its validation errors, taken
    from the callable it runs: have it name ``endpoint``'s, not this module's. Through a cache
    of FastAPI's own (private: used when present, else the errors name this module's file)."""
    cache = getattr(fastapi.routing, "_endpoint_context_cache", None)
    extract = getattr(fastapi.routing, "_extract_endpoint_context", None)
    if isinstance(cache, dict) and callable(extract):
        cache[id(call)] = extract(endpoint)


def protected_resource_router(resource: ProtectedResource, *, serve_root: bool = True) -> APIRouter:
    """A router serving ``resource``'s RFC 9728 metadata document (GET and HEAD).

    Include it in the application at the root of the resource's host
    (``app.include_router(...)``, no prefix). It answers at :attr:`ProtectedResource.metadata_path`
    (``/.well-known/oauth-protected-resource/mcp`` for ``https://host/mcp``, RFC 9728 §3.1) and,
    with ``serve_root`` (the default), also at ``/.well-known/oauth-protected-resource`` for
    clients that look there first when a challenge carried no ``resource_metadata``. The
    document is public: ``Cache-Control: public, max-age=...`` and
    ``Access-Control-Allow-Origin: *`` (browser-based clients read it cross-origin).
    """
    body = JSONResponse(resource.metadata()).body
    headers = {
        "Cache-Control": f"public, max-age={resource.max_age}",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }

    async def metadata() -> Response:
        return Response(body, media_type="application/json", headers=headers)

    router = APIRouter()
    paths = [resource.metadata_path]
    if serve_root and resource.metadata_path != WELL_KNOWN_PROTECTED_RESOURCE:
        paths.append(WELL_KNOWN_PROTECTED_RESOURCE)
    for path in paths:
        router.add_api_route(
            path,
            metadata,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            response_class=Response,
        )
    return router
