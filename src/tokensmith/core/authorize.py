"""The authorization endpoint's request validation and response building.

Order matters (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2): the client and its redirect URI are checked
first, and any problem with them is shown on an error page, never sent to a redirect URI. Only
then are the other parameters checked, and their errors go to the (now trusted) redirect URI with
``state`` and ``iss`` (RFC 9207).

Policy (OAuth 2.1 / RFC 9700): ``response_type=code`` only; PKCE S256 for every client; scopes
within the client's allowed set and defined by the requested API (or OpenID Connect scopes);
``resource`` (RFC 8707 §2) must name one of the APIs the client is registered for, anything else
is ``invalid_target``. Without ``resource`` the request is for the client's default API.

Dynamic clients (``Client.origin`` ``registered`` or ``metadata_document``, MCP issue 16 item 4)
have no default API: they must send ``resource`` and it must name a registered API open to
dynamic clients (``Api.dynamic_clients``); the token's audience is exactly that resource. Anything
else, a missing ``resource`` included, is ``invalid_target``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from tokensmith.core import id_token, interaction, mfa, pkce, scopes
from tokensmith.core.context import ServerContext, Transaction
from tokensmith.core.errors import (
    AuthorizationPageError,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from tokensmith.core.interaction import AuthorizeOutcome, BrowserView
from tokensmith.core.metadata_document import DocumentError, looks_like_document_url
from tokensmith.core.models import GRANT_AUTHORIZATION_CODE, Api, AuthorizationRequest, Client
from tokensmith.core.params import parse_query, printable
from tokensmith.core.ports import Stores
from tokensmith.core.redirect_uris import find_match, redirect_url
from tokensmith.core.scopes import OIDC_SCOPES

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer

__all__ = [
    "ClientRedirect",
    "authorize",
    "check_client_and_redirect",
    "documents_resolved",
    "error_redirect_url",
    "redirect_url",
    "validate",
    "with_hint",
]

PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
MAX_STATE_LENGTH = 2048


def documents_resolved(
    server: AuthorizationServer, raw_query: bytes | str, transaction: Transaction
) -> AbstractAsyncContextManager[None]:
    """Step 0, before the request's transaction: a ``client_id`` that is a metadata document
    URL is resolved with no transaction held (``ServerContext.documents_resolved``); whoever
    starts an authorization request chooses the document's server, and so how long its fetch
    takes. A query that cannot be read is left to ``authorize`` to refuse."""
    try:
        params, duplicates = parse_query(raw_query, max_value_length=server.policy.max_param_length)
    except OAuthError:
        params, duplicates = {}, frozenset()
    client_id = params.get("client_id") if "client_id" not in duplicates else None
    return server.context.documents_resolved(client_id, transaction)


async def authorize(
    server: AuthorizationServer,
    raw_query: bytes | str,
    stores: Stores,
    *,
    browser: BrowserView,
) -> AuthorizeOutcome:
    """``GET|POST /authorize``: the checks in their order, then the decision.

    1. parse the query (duplicates noted, values bounded);
    2. the client and its redirect URI (``check_client_and_redirect``): any problem is an error
       page (``AuthorizationPageError``), never a redirect;
    3. the APIs the request may name (``AuthorizationServer.apis_for``);
    4. every other parameter (``validate``): errors go to the client's redirect URI;
    5. ``id_token_hint`` (``with_hint``);
    6. login, consent or code (``interaction.proceed``).
    """
    params, duplicates = parse_query(raw_query, max_value_length=server.policy.max_param_length)
    client_id = params.get("client_id")
    client: Client | None
    if client_id and "client_id" not in duplicates and looks_like_document_url(client_id):
        try:  # a metadata-document client: say why it cannot be used, on the error page
            client = await server.context.document_client(client_id, stores)
        except DocumentError as exc:
            raise AuthorizationPageError(
                f"the client's metadata document cannot be used: {exc.detail}"
            ) from None
    else:
        client = await server.get_client(client_id, stores) if client_id else None
    target = check_client_and_redirect(params, duplicates, client)
    apis = await server.apis_for(params.get("resource"), target.client, stores)
    request = validate(params, duplicates, target, apis)
    request = with_hint(server, request, params.get("id_token_hint"))
    return await interaction.proceed(
        server,
        request,
        stores,
        session=browser.session,
        browser_digest=browser.browser_digest,
        interaction=None,
    )


def with_hint(
    server: AuthorizationServer, request: AuthorizationRequest, hint: str | None
) -> AuthorizationRequest:
    """Verify ``id_token_hint`` (OpenID Connect Core §3.1.2.1): one of our ID tokens, expired or
    not, issued to the requesting client (its ``aud`` contains the ``client_id``, as at logout:
    another client's ID token says nothing about this client's user); the user it names must be
    the one logged in (``interaction.session_user``). Otherwise ``invalid_request``, with
    ``prompt=none`` too."""
    if hint is None:
        return request
    try:
        claims = id_token.verify_hint(server.keys, hint, issuer=server.issuer)
    except jwt.PyJWTError:
        raise InvalidRequest("id_token_hint is not an ID token issued by this server").to_client(
            request.redirect_uri, request.state
        ) from None
    if request.client_id not in id_token.audiences(claims):
        raise InvalidRequest("id_token_hint was issued to another client").to_client(
            request.redirect_uri, request.state
        )
    return dataclasses.replace(request, hint_subject=str(claims["sub"]))


@dataclass(frozen=True, slots=True)
class ClientRedirect:
    """The client and redirect URI of a request, once both are trusted."""

    client: Client
    redirect_uri: str
    redirect_uri_sent: bool
    state: str | None


def check_client_and_redirect(
    params: Mapping[str, str], duplicates: frozenset[str], client: Client | None
) -> ClientRedirect:
    """Step 1: raise ``AuthorizationPageError`` unless client and redirect URI are trustworthy."""
    if {"client_id", "redirect_uri"} & duplicates:
        raise AuthorizationPageError("client_id or redirect_uri was sent more than once")
    if "client_id" not in params:
        raise AuthorizationPageError("the request has no client_id")
    if client is None:
        raise AuthorizationPageError("the client is not registered with this server")
    requested = params.get("redirect_uri")
    if requested is None:
        # OAuth 2.1 §4.1.1: optional only when exactly one redirect URI is registered.
        if len(client.redirect_uris) != 1:
            raise AuthorizationPageError("the request has no redirect_uri")
        redirect_uri, sent = client.redirect_uris[0], False
    else:
        if find_match(requested, client.redirect_uris, native=client.native) is None:
            raise AuthorizationPageError("the redirect_uri is not registered for this client")
        redirect_uri, sent = requested, True
    state = params.get("state") if "state" not in duplicates else None
    if state is not None and len(state) > MAX_STATE_LENGTH:
        state = None
    return ClientRedirect(client, redirect_uri, sent, state)


def validate(
    params: Mapping[str, str],
    duplicates: frozenset[str],
    target: ClientRedirect,
    apis: Mapping[str, Api],
) -> AuthorizationRequest:
    """Step 2: validate everything else; errors are redirectable (``OAuthError.to_client``)."""
    try:
        return _validate(params, duplicates, target, apis)
    except OAuthError as exc:
        raise exc.to_client(target.redirect_uri, target.state) from None


def _validate(
    params: Mapping[str, str],
    duplicates: frozenset[str],
    target: ClientRedirect,
    apis: Mapping[str, Api],
) -> AuthorizationRequest:
    client = target.client
    if duplicates:
        name = printable(sorted(duplicates)[0])
        raise InvalidRequest(f"parameter '{name}' was sent more than once")
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise InvalidRequest(f"state is longer than {MAX_STATE_LENGTH} characters")
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if params.get("response_mode", "query") != "query":
        raise InvalidRequest("only response_mode=query is supported")
    if "request" in params:
        raise RequestNotSupported("request objects are not supported")
    if "request_uri" in params:
        raise RequestUriNotSupported("request_uri is not supported")
    if GRANT_AUTHORIZATION_CODE not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code grant")
    challenge = pkce.check_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    requested = scopes.parse_scope(params.get("scope"))
    audience, api = resolve_audience(params.get("resource"), client, apis)
    requested = check_user_scopes(requested, client, api)
    prompt = _prompt(params.get("prompt"))
    max_age = _max_age(params.get("max_age"))
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        redirect_uri_sent=target.redirect_uri_sent,
        scopes=requested,
        state=state,
        code_challenge=challenge,
        audience=audience,
        nonce=params.get("nonce"),
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        acr_values=mfa.check_acr_values(tuple((params.get("acr_values") or "").split())),
    )


def resolve_audience(
    resource: str | None, client: Client, apis: Mapping[str, Api]
) -> tuple[str, Api | None]:
    """The audience of a token: the ``resource`` (RFC 8707 §2), which must be one of the client's
    APIs, or else the client's default API; ``("", None)`` when the client has none (OpenID-only
    requests). ``apis`` holds the registered API looked up for the request, if any.

    A resource the client is not registered for is ``invalid_target`` whether or not it is a
    registered API, with the same words: the answer does not tell which APIs exist.
    """
    if resource is not None:
        if not client.might_use(resource):
            raise InvalidTarget("this client may not request tokens for the requested resource")
        identifier = resource
    elif client.is_dynamic:
        raise InvalidTarget(DYNAMIC_NEEDS_RESOURCE)
    elif client.default_api is not None:
        identifier = client.default_api
    else:
        return "", None
    api = apis.get(identifier)
    if api is None or not client.may_use(api):
        if client.is_dynamic:  # unregistered or closed to dynamic clients: the same words
            raise InvalidTarget("this client may not request tokens for the requested resource")
        raise InvalidTarget("the requested resource is no longer a registered API")
    return api.identifier, api


DYNAMIC_NEEDS_RESOURCE = (
    "a dynamically registered or metadata-document client must name the API it wants a token "
    "for in the resource parameter (RFC 8707)"
)


def allowed_scopes(client: Client, api: Api | None) -> tuple[str, ...]:
    """The scopes ``client`` may ask for ``api``: its registered scopes; for a dynamic client
    that declared none, the OpenID Connect scopes and those ``api`` defines."""
    if client.is_dynamic and not client.scopes:
        return (*sorted(OIDC_SCOPES), *(api.scopes if api is not None else ()))
    return client.scopes


async def check_grant_scopes(
    context: ServerContext, client: Client, audience: str, scopes: Iterable[str], stores: Stores
) -> None:
    """At the token endpoint, for the tokens of an existing grant or code: every scope it holds
    must still be one the client may ask for (:func:`allowed_scopes`). Taking a scope from a
    client revokes its grants that hold it (``core.client_narrowing``), but a code issued just
    before (codes live a minute), or a grant read by a server whose cached client was older,
    may still hold one: ``invalid_grant``, and nothing is issued."""
    api = await context.get_api(audience, stores) if audience else None
    allowed = allowed_scopes(client, api)
    lost = [s for s in scopes if s not in allowed]
    if lost:
        raise InvalidGrant(
            "the client may no longer use a scope of this grant: authorize again",
            detail=f"scopes no longer allowed: {' '.join(lost)}",
        )


def check_user_scopes(
    requested: tuple[str, ...], client: Client, api: Api | None
) -> tuple[str, ...]:
    """The scopes of a user grant for ``api``: those requested or, when none are, the client's
    allowed scopes that mean something for ``api`` (OpenID Connect scopes and the API's own).

    Each must be allowed for the client and be an OpenID Connect scope or defined by ``api``
    (a scope of the same name defined by another API is not: ``invalid_scope``). The result is
    never empty.
    """
    allowed = allowed_scopes(client, api)
    if not requested:
        if client.is_dynamic and not client.scopes:
            # a client that declared no scopes gets the API's, not every OpenID Connect scope
            requested = api.scopes if api is not None else ()
        else:
            requested = tuple(s for s in allowed if _means_something(s, api))
        if not requested:
            raise InvalidScope("scope is required")
    scopes.check_allowed(requested, allowed)
    undefined = [s for s in requested if not _means_something(s, api)]
    if undefined:
        if api is None:
            raise InvalidScope("API scopes need a resource: this client has no default API")
        raise InvalidScope(f"scope not defined by {api.identifier}: {' '.join(undefined)}")
    return requested


def _means_something(scope: str, api: Api | None) -> bool:
    return scope in OIDC_SCOPES or (api is not None and scope in api.scopes)


def _prompt(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    values = tuple(dict.fromkeys(value.split(" ")))
    if any(v not in PROMPT_VALUES for v in values):
        raise InvalidRequest("prompt holds an unknown value")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    return values


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise InvalidRequest("max_age must be a non-negative integer")
    return int(value)


def error_redirect_url(err: OAuthError, issuer: str) -> str:
    """The redirect URI carrying an error response (RFC 6749 §4.1.2.1, RFC 9207); ``err`` must be
    redirectable."""
    if err.return_to is None:
        raise ValueError("this error is not sent to a redirect URI")
    return redirect_url(
        err.return_to.redirect_uri,
        {
            "error": err.error,
            "error_description": err.description or None,
            "state": err.return_to.state,
            "iss": issuer,
        },
    )
