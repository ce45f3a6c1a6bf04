"""Typed request and response shapes of the authorization-server endpoints, for OpenAPI.

The handlers read raw query strings and form bodies (``core.params``) instead of FastAPI
parameters, on purpose: a duplicated or malformed parameter is an OAuth ``invalid_request``, never
a 422, and the token endpoint pays for no validation machinery. So the models here are used ONLY
for the description: each route is registered with the keyword arguments below
(``responses=`` with the response models, ``openapi_extra=`` with the query parameters and the
form body built from a model), and FastAPI's own generator (``app.openapi()``) assembles the
document from the routes. :func:`install` adds what a route cannot declare: the security schemes
(document-level components; FastAPI only collects them from security dependencies, which would
put its dependency machinery on the hot path).

The routes themselves are plain Starlette routes (:class:`DescribedRoute`): FastAPI's per-request
machinery (dependency solving, response-model handling) would serve no purpose for a handler that
takes the ``Request`` and returns a ``Response``, and it costs about a sixth of a
``client_credentials`` request. Each route carries the ``APIRoute`` that describes it, and the
document is generated from those. The machine-to-machine routes are also served without the
router and FastAPI's layers around it (``server/fastpath.py``); they stay in ``app.routes``.

The description is what ``tests/server/test_fuzz.py`` checks the server against with schemathesis.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Literal, NotRequired, Required, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ConfigDict, Field, TypeAdapter, with_config
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

__all__ = ["DescribedRoute", "described_routes", "install"]

Endpoint = Callable[[Request], Awaitable[Response]]
AsgiEndpoint = Callable[[Scope, Receive, Send], Awaitable[None]]


class DescribedRoute(Route):
    """A plain Starlette route (the handler takes the ``Request`` and returns a ``Response``;
    no dependency solving, no response model) that carries the FastAPI ``APIRoute`` describing
    it in the OpenAPI document (``described``; ``include_in_schema=False``: not described).

    ``asgi=True``: the handler is written against ASGI itself (``(scope, receive, send)``,
    ``routes/client_form.py``) and is the route's app, as Starlette makes a class endpoint; its
    description is made from a stand-in with the usual ``(request)`` signature and the
    handler's name and docstring (FastAPI reads a handler's signature to describe its
    parameters, and would take ``scope``, ``receive`` and ``send`` for three of them).

    It answers exactly ``methods``, as FastAPI's routes do (Starlette would add ``HEAD`` to a
    ``GET`` route)."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint | AsgiEndpoint,
        *,
        methods: list[str],
        asgi: bool = False,
        **description: Any,
    ) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.methods = {m.upper() for m in methods}
        self.asgi = asgi
        self._described_endpoint: Callable[..., Any] = endpoint
        if asgi:
            self.app = cast(AsgiEndpoint, endpoint)
            self._described_endpoint = _stand_in(endpoint)
        self._description = {"methods": methods, **description}

    @functools.cached_property
    def described(self) -> APIRoute:
        """The ``APIRoute`` that describes this route, made when the OpenAPI document is first
        asked for: FastAPI analyses the handler and builds the pydantic models of its
        description then (about 1 ms a route, 80 ms an app; every test starts an app)."""
        return APIRoute(self.path, self._described_endpoint, **self._description)


def _stand_in(endpoint: Callable[..., Any]) -> Endpoint:
    """What describes an ASGI handler: its name and docstring, the usual signature. Only its
    signature is read (by FastAPI, for the description); the route's app is the handler."""

    async def stand_in(request: Request) -> Response:
        raise AssertionError(f"{endpoint.__name__} is served by its route's app, not this")

    stand_in.__name__ = endpoint.__name__
    stand_in.__qualname__ = endpoint.__qualname__
    stand_in.__doc__ = endpoint.__doc__
    return stand_in


def described_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with each :class:`DescribedRoute` replaced by its description."""
    return [r.described if isinstance(r, DescribedRoute) else r for r in routes]


#: RFC 6749 §5.2: ``error`` and ``error_description`` are limited to %x20-21 / %x23-5B / %x5D-7E.
ERROR_CHARS = r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$"
_ERROR_CODE = r"^[\x20-\x21\x23-\x5B\x5D-\x7E]+$"
_SCOPE = r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
HTML = "text/html"

_CLOSED = ConfigDict(extra="forbid")
_OPEN = ConfigDict(extra="allow")


def _s(description: str, **extra: Any) -> Any:
    """A described string field (``Annotated[str, _s(...)]``)."""
    return Field(description=description, **extra)


# --- responses ---------------------------------------------------------------------------------


@with_config(_CLOSED)
class OAuthError(TypedDict, total=False):
    """RFC 6749 §5.2 (and RFC 6750 §3.1, RFC 7009 §2.2.1) error response."""

    error: Required[Annotated[str, Field(pattern=_ERROR_CODE)]]
    error_description: Annotated[str, Field(pattern=ERROR_CHARS)]
    error_uri: str


@with_config(_CLOSED)
class TokenResponse(TypedDict, total=False):
    """RFC 6749 §5.1; ``id_token`` with the openid scope (OpenID Connect Core §3.1.3.3);
    ``refresh_token`` when the client may refresh."""

    access_token: Required[Annotated[str, Field(min_length=1)]]
    token_type: Required[Literal["Bearer"]]
    expires_in: Required[Annotated[int, Field(ge=1)]]
    scope: Required[str]
    refresh_token: Annotated[str, Field(min_length=1)]
    id_token: Annotated[str, Field(min_length=1)]


@with_config(_CLOSED)
class Introspection(TypedDict, total=False):
    """RFC 7662 §2.2: exactly ``{"active": false}`` for a token that is not active or not the
    caller's business."""

    active: Required[bool]
    scope: str
    client_id: str
    sub: str
    exp: int
    iat: int
    iss: str
    aud: str
    token_type: Literal["Bearer", "refresh_token"]
    jti: str


@with_config(_CLOSED)
class UserInfo(TypedDict, total=False):
    """OpenID Connect Core §5.3.2: claims by scope."""

    sub: Required[str]
    name: str
    preferred_username: str
    updated_at: int
    email: str
    email_verified: bool


@with_config(_OPEN)
class Metadata(TypedDict):
    """RFC 8414 §2 / OpenID Connect Discovery 1.0 §3."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: NotRequired[str]
    revocation_endpoint: NotRequired[str]
    introspection_endpoint: NotRequired[str]
    end_session_endpoint: NotRequired[str]
    response_types_supported: list[str]
    code_challenge_methods_supported: Annotated[
        list[Literal["S256"]], Field(min_length=1, max_length=1)
    ]
    grant_types_supported: NotRequired[list[str]]
    client_id_metadata_document_supported: NotRequired[bool]
    """draft-ietf-oauth-client-id-metadata-document: present (true) when accepted."""


@with_config(
    ConfigDict(
        extra="allow",
        # A public key only: none of the private members (RFC 7518 §6.2.2, §6.3.2).
        json_schema_extra={
            "not": {"anyOf": [{"required": [name]} for name in ("d", "p", "q", "dp", "dq")]}
        },
    )
)
class PublicJwk(TypedDict):
    """RFC 7517 §4: one public signing key."""

    kty: Literal["EC", "RSA", "OKP"]
    kid: str
    alg: Literal["ES256", "RS256", "EdDSA"]
    use: Literal["sig"]


@with_config(_CLOSED)
class JWKS(TypedDict):
    """RFC 7517 §5: the public signing keys (pending, active and retired)."""

    keys: list[PublicJwk]


# --- request parameters (query strings and form bodies) ----------------------------------------


class ClientAuthentication(TypedDict, total=False):
    """RFC 6749 §2.3.1 ``client_secret_post``, RFC 7523 ``private_key_jwt``, or ``client_id``
    alone for public clients. One method per request; ``client_secret_basic`` uses the
    Authorization header instead."""

    client_id: str
    client_secret: str
    client_assertion_type: Literal["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    client_assertion: str


class AuthorizeParams(TypedDict, total=False):
    """RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1."""

    response_type: Required[Annotated[Literal["code"], _s("RFC 6749 §4.1.1")]]
    client_id: Required[Annotated[str, _s("The registered client.")]]
    redirect_uri: Annotated[
        str,
        _s(
            "Exactly one of the client's registered redirect URIs (any port for a native app's "
            "loopback IP redirect). Optional when the client registered only one."
        ),
    ]
    scope: Annotated[str, _s("Space-delimited scopes (RFC 6749 §3.3).", pattern=_SCOPE)]
    state: Annotated[str, _s("Opaque value echoed to the client.", max_length=2048)]
    code_challenge: Required[
        Annotated[str, _s("RFC 7636 §4.2, S256.", pattern="^[A-Za-z0-9_-]{43}$")]
    ]
    code_challenge_method: Required[Annotated[Literal["S256"], _s("RFC 7636 §4.3; only S256.")]]
    resource: Annotated[str, _s("RFC 8707: the API the token is for.")]
    nonce: Annotated[str, _s("OpenID Connect Core §3.1.2.1.")]
    prompt: Annotated[
        str,
        _s(
            "OpenID Connect Core §3.1.2.1.",
            pattern="^(none|login|consent|select_account)( \\S+)*$",
        ),
    ]
    max_age: Annotated[str, _s("Seconds since the last login.", pattern="^[0-9]{1,10}$")]
    login_hint: Annotated[str, _s("OpenID Connect Core §3.1.2.1.")]
    id_token_hint: Annotated[str, _s("An ID token this server issued.")]
    response_mode: Annotated[Literal["query"], _s("Only query.")]


class TokenForm(ClientAuthentication, total=False):
    """RFC 6749 §4.1.3, §4.4.2, §6; RFC 7636 §4.5; RFC 8707."""

    grant_type: Required[
        Annotated[
            Literal["authorization_code", "refresh_token", "client_credentials"],
            _s("RFC 6749 §4.1.3, §4.4.2, §6."),
        ]
    ]
    code: Annotated[str, _s("The authorization code.")]
    redirect_uri: Annotated[str, _s("Required when the authorization request carried one.")]
    code_verifier: Annotated[str, _s("RFC 7636 §4.5.", pattern="^[A-Za-z0-9._~-]{43,128}$")]
    refresh_token: Annotated[str, _s("RFC 6749 §6.")]
    scope: Annotated[str, _s("A subset of the granted scopes.", pattern=_SCOPE)]
    resource: Annotated[str, _s("RFC 8707.")]


_Token = Annotated[str, _s("The token.", max_length=16384)]


class RevokeForm(ClientAuthentication, total=False):
    """RFC 7009 §2.1."""

    token: Required[_Token]
    token_type_hint: Annotated[Literal["access_token", "refresh_token"], _s("RFC 7009 §2.1")]


class IntrospectForm(ClientAuthentication, total=False):
    """RFC 7662 §2.1."""

    token: Required[_Token]
    token_type_hint: Annotated[str, _s("RFC 7662 §2.1: a hint, ignored.")]


class UserInfoForm(TypedDict, total=False):
    """RFC 6750 §2.2: the token in the body."""

    access_token: Annotated[str, _s("RFC 6750 §2.2")]


class LogoutParams(TypedDict, total=False):
    """RP-Initiated Logout 1.0 §2."""

    id_token_hint: Annotated[str, _s("An ID token this server issued (expired or not).")]
    client_id: Annotated[str, _s("The client, when there is no id_token_hint.")]
    post_logout_redirect_uri: Annotated[str, _s("One the client registered, exactly.")]
    state: Annotated[str, _s("Echoed to post_logout_redirect_uri.")]


class LogoutForm(TypedDict, total=False):
    """The form of the logout confirmation page."""

    client_id: Annotated[str, _s("The client, when there is no id_token_hint.")]
    post_logout_redirect_uri: Annotated[str, _s("One the client registered, exactly.")]
    state: Annotated[str, _s("Echoed to post_logout_redirect_uri.")]
    csrf_token: Required[Annotated[str, _s("From the confirmation page.")]]


def _schema(shape: type[Any]) -> dict[str, Any]:
    """The inline JSON schema of a request shape (no ``title``: not a component)."""
    schema: dict[str, Any] = TypeAdapter(shape).json_schema()
    schema.pop("title", None)
    schema["description"] = " ".join((shape.__doc__ or "").split())
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def _query(shape: type[Any]) -> dict[str, Any]:
    schema = _schema(shape)
    required = set(schema.get("required", ()))
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema["properties"].items()
        ]
    }


def _form(shape: type[Any], *, required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {FORM: {"schema": _schema(shape)}}}}


# --- responses shared by several operations ----------------------------------------------------

_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The challenge (RFC 6749 §5.2 for Basic, RFC 6750 §3 for Bearer).",
        "schema": {"type": "string"},
    }
}
_BEARER_CHALLENGE = {
    "WWW-Authenticate": {
        "required": True,
        "description": "RFC 6750 §3.",
        "schema": {"type": "string", "pattern": '^Bearer realm="tokensmith"'},
    }
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_LOCATION = {"Location": {"required": True, "schema": {"type": "string", "minLength": 1}}}

Responses = dict[int | str, dict[str, Any]]


def _json_error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "model": OAuthError}
    if headers:
        out["headers"] = headers
    return out


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _LOCATION}


def _ok(description: str, model: type[Any]) -> dict[str, Any]:
    return {"description": description, "model": model}


API_ERRORS: Responses = {
    400: _json_error("invalid_request and the other RFC 6749 §5.2 errors."),
    401: _json_error("invalid_client: client authentication failed.", headers=_WWW_AUTHENTICATE),
    413: _json_error("invalid_request: the body is larger than max_form_bytes."),
    429: _json_error(
        "slow_down: too many requests for this client, or too many failed client "
        "authentications from this address.",
        headers=_RETRY_AFTER,
    ),
    503: _json_error("temporarily_unavailable: a store is down.", headers=_RETRY_AFTER),
}

PAGE_ERRORS: Responses = {
    400: _page("An error page: the client or redirect URI cannot be trusted."),
    401: _page("An error page: the client cannot use this endpoint."),
    403: _page("An error page: the request was refused."),
    413: _page("An error page: the body is larger than max_form_bytes."),
    503: _page("An error page: a store is down."),
}
_PAGE_ERRORS_NO_BODY = {k: v for k, v in PAGE_ERRORS.items() if k != 413}

# Authenticated by Basic, or by parameters in the body (no security requirement as far as
# OpenAPI can tell; the body schema lists them).
CLIENT_SECURITY: list[dict[str, list[str]]] = [{"clientSecretBasic": []}, {}]

SECURITY_SCHEMES: dict[str, Any] = {
    "clientSecretBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "RFC 6749 §2.3.1: client id and secret, each form-urlencoded, joined by "
        "':' and Base64-encoded.",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "RFC 6750 access token."},
}


def _op(
    operation_id: str,
    summary: str,
    tag: str,
    responses: Responses,
    *,
    status_code: int = 200,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``app.add_api_route``: the route describes itself.

    ``response_class=Response`` (no media type): FastAPI adds no default JSON body to the
    operation; the handlers return their responses themselves anyway. ``status_code`` is the
    documented default status (only used for the description: the handlers set their own)."""
    return {
        "operation_id": operation_id,
        "summary": summary,
        "tags": [tag],
        "response_class": Response,
        "status_code": status_code,
        "responses": responses,
        "openapi_extra": extra or {},
        "include_in_schema": True,
    }


AUTHORIZE_GET = _op(
    "authorize",
    "Authorization endpoint (RFC 6749 §4.1.1)",
    "oauth",
    {
        302: _redirect(
            "To the client's redirect URI (a code, or an error with state and iss), or to the "
            "login or consent page."
        ),
        **_PAGE_ERRORS_NO_BODY,
    },
    status_code=302,
    extra=_query(AuthorizeParams),
)
AUTHORIZE_POST = _op(
    "authorize_post",
    "Authorization endpoint, form post (OpenID Connect Core §3.1.2.1)",
    "oauth",
    {303: _redirect("As for GET, with 303."), **PAGE_ERRORS},
    status_code=303,
    extra=_form(AuthorizeParams),
)
TOKEN = _op(
    "token",
    "Token endpoint (RFC 6749 §3.2)",
    "oauth",
    {200: _ok("Tokens (RFC 6749 §5.1), Cache-Control: no-store.", TokenResponse), **API_ERRORS},
    extra={"security": CLIENT_SECURITY, **_form(TokenForm)},
)
TOKEN_GET = _op(
    "token_get",
    "Refused: codes and credentials never travel in a URL",
    "oauth",
    {405: _json_error("invalid_request", headers={"Allow": {"schema": {"const": "POST"}}})},
    status_code=405,
)
REVOKE = _op(
    "revoke",
    "Token revocation (RFC 7009)",
    "oauth",
    {200: {"description": "Revoked, or unknown (RFC 7009 §2.2): an empty body."}, **API_ERRORS},
    extra={"security": CLIENT_SECURITY, **_form(RevokeForm)},
)
INTROSPECT = _op(
    "introspect",
    "Token introspection (RFC 7662), for confidential clients",
    "oauth",
    {200: _ok("RFC 7662 §2.2.", Introspection), **API_ERRORS},
    extra={"security": CLIENT_SECURITY, **_form(IntrospectForm)},
)
_USERINFO_RESPONSES: Responses = {
    200: _ok("The user's claims.", UserInfo),
    400: _json_error("invalid_request", headers=_BEARER_CHALLENGE),
    401: _json_error(
        "invalid_token; or, when the request carried no token at all, a bare challenge "
        '(`WWW-Authenticate: Bearer realm="tokensmith"`) with no body (RFC 6750 §3.1).',
        headers=_BEARER_CHALLENGE,
    ),
    403: _json_error("insufficient_scope: no openid scope.", headers=_BEARER_CHALLENGE),
    413: _json_error("the body is larger than max_form_bytes.", headers=_BEARER_CHALLENGE),
    503: _json_error("temporarily_unavailable: a store is down.", headers=_RETRY_AFTER),
}
_USERINFO_SUMMARY = "UserInfo (OpenID Connect Core §5.3), RFC 6750 bearer token"
USERINFO_GET = _op(
    "userinfo_get",
    _USERINFO_SUMMARY,
    "openid",
    _USERINFO_RESPONSES,
    extra={"security": [{"bearer": []}]},
)
USERINFO_POST = _op(
    "userinfo_post",
    _USERINFO_SUMMARY,
    "openid",
    _USERINFO_RESPONSES,
    extra={"security": [{"bearer": []}, {}], **_form(UserInfoForm, required=False)},
)
OAUTH_METADATA = _op(
    "oauth_metadata",
    "Authorization server metadata (RFC 8414)",
    "discovery",
    {200: _ok("The metadata.", Metadata)},
)
OPENID_CONFIGURATION = _op(
    "openid_configuration",
    "OpenID Provider metadata (Discovery 1.0)",
    "discovery",
    {200: _ok("The metadata.", Metadata)},
)
JWKS_GET = _op(
    "jwks", "The JSON Web Key Set (RFC 7517)", "discovery", {200: _ok("Public keys only.", JWKS)}
)
LOGOUT_GET = _op(
    "logout",
    "RP-Initiated Logout 1.0 (end_session_endpoint)",
    "openid",
    {
        200: _page("Signed out, or a confirmation page (no id_token_hint)."),
        302: _redirect("To the post_logout_redirect_uri."),
        **_PAGE_ERRORS_NO_BODY,
    },
    extra=_query(LogoutParams),
)
LOGOUT_POST = _op(
    "logout_confirm",
    "Confirm logout (the form of the confirmation page)",
    "openid",
    {
        200: _page("Signed out."),
        303: _redirect("To the post_logout_redirect_uri."),
        **PAGE_ERRORS,
    },
    extra=_form(LogoutForm),
)


def install(app: FastAPI, *, issuer: str, extra_schemes: dict[str, Any] | None = None) -> None:
    """Make ``app.openapi()`` FastAPI's document generated from the routes, plus the security
    schemes their ``security`` requirements name (components no route can declare)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description="The OAuth 2.1 / OpenID Connect endpoints of a tokensmith server. "
            "Parameters are form-urlencoded or in the query; a parameter sent twice is "
            "invalid_request; error bodies follow RFC 6749 §5.2.",
            routes=described_routes(app.routes),
            servers=[{"url": issuer}],
        )
        document.setdefault("components", {})["securitySchemes"] = {
            **SECURITY_SCHEMES,
            **(extra_schemes or {}),
        }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
