"""The admin API, ``/admin/v1/...``: APIs, clients, users, keys, and users' grants and sessions,
as JSON, for operators who automate. Every operation is one call of the admin service
(``tokensmith.admin.Admin``, the one the CLI uses: the same rules and the same messages); its
values are rendered with ``tokensmith.admin.views`` (the CLI's ``--json`` field names).

Each request, in order:

1. the caller's address must not be past its limit of failed authentications
   (``server.ratelimit``, shared with the token endpoint);
2. the bearer token (``Authorization`` header only) is checked by
   ``core.admin_access.check_admin_access``: one of our access tokens, for the admin API's
   audience, of a client that still exists, with the operation's scope (401 ``invalid_token`` /
   403 ``insufficient_scope`` naming the scope, with an RFC 6750 challenge); a failure counts
   against the address;
3. the calling client's requests are counted (``token_rate_limit``, per client);
4. a JSON body is read under ``max_form_bytes`` and ``form_read_timeout`` and validated against
   the operation's shape (unknown fields refused): a bad body is 400 ``invalid_request``;
5. one admin service call; a refusal is 400 ``invalid_request`` (404 ``not_found``, 409
   ``conflict``) with the service's message;
6. a change emits an audit event ``admin.<operation>`` whose actor is the calling client.

Errors use the project's JSON error format (RFC 6749 §5.2 ``error`` / ``error_description``).
No CORS: the admin API is for scripts and back-ends, never for browser pages of other origins.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from tokensmith.admin import Admin, AdminConflict, AdminError, AdminNotFound, ClientMetadata
from tokensmith.admin.views import (
    api_json,
    client_json,
    grant_json,
    invitation_json,
    key_json,
    session_json,
    user_json,
)
from tokensmith.core.admin_access import (
    ADMIN_PATH,
    ADMIN_SCOPE_DESCRIPTIONS,
    AdminAction,
    AdminCaller,
    AdminResource,
    admin_scope,
    check_admin_access,
)
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import InsufficientScope, InvalidRequest, InvalidToken, OAuthError
from tokensmith.core.token_status import MAX_TOKEN_LENGTH
from tokensmith.server.errors import log_error
from tokensmith.server.http import json_response, lazy_transaction, read_body, single_header
from tokensmith.server.mail import Mailer
from tokensmith.server.schemas import DescribedRoute
from tokensmith.server.state import runtime

REALM = 'Bearer realm="tokensmith"'


class NotFound(OAuthError):
    error = "not_found"
    status_code = 404


class Conflict(OAuthError):
    error = "conflict"
    status_code = 409


def _refusal(exc: AdminError) -> OAuthError:
    """The admin service's refusal as an HTTP error, with the service's message."""
    if isinstance(exc, AdminNotFound):
        return NotFound(str(exc))
    if isinstance(exc, AdminConflict):
        return Conflict(str(exc))
    return InvalidRequest(str(exc))


#: RFC 6749 §5.2: ``error_description`` holds %x20-21 / %x23-5B / %x5D-7E only.
_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")


def printable(text: str) -> str:
    """``text`` with every character RFC 6749 §5.2 does not allow in an ``error_description``
    (quotes, backslashes, controls, anything not ASCII) replaced by ``?``: a message may echo a
    name from the request, and the error format stays what every endpoint promises."""
    return _UNSAFE.sub("?", text)


def _error(request: Request, exc: OAuthError, *, scope: str) -> Response:
    """The JSON error; a token error also carries its RFC 6750 §3 challenge (naming the
    operation's ``scope`` when it was missing)."""
    log_error(request, exc)
    exc.description = printable(exc.description)
    headers = dict(exc.headers)
    if isinstance(exc, InvalidToken | InsufficientScope):
        value = f'{REALM}, error="{exc.error}"'
        if exc.description:
            value += f', error_description="{exc.description}"'
        if isinstance(exc, InsufficientScope):
            value += f', scope="{scope}"'
        headers["WWW-Authenticate"] = value
    return json_response(exc.body(), status=exc.status_code, headers=headers)


def _bearer(request: Request) -> str:
    header = single_header(request, "authorization")
    if header is None:
        raise InvalidToken("send an access token for the admin API: Authorization: Bearer <token>")
    scheme, _, value = header.partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("use the Bearer scheme")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("the access token is invalid, expired or revoked")
    return token


# --- request bodies (validated here, described in the OpenAPI document) ------------------------

_CLOSED = ConfigDict(extra="forbid")
_Str = Annotated[str, Field(min_length=1, max_length=2000)]
_Ttl = Annotated[int, Field(ge=30, le=10 * 365 * 86400)]


@with_config(_CLOSED)
class ApiCreate(TypedDict, total=False):
    """An API (resource server): its identifier is the audience of its tokens."""

    identifier: Annotated[_Str, Field(description="An absolute URI, the tokens' audience.")]
    scopes: list[_Str]
    name: _Str
    descriptions: dict[str, _Str]


class _ClientFields(TypedDict, total=False):
    name: _Str
    redirect_uris: list[_Str]
    grant_types: list[_Str]
    scopes: list[_Str]
    apis: list[_Str]
    first_party: bool
    introspect: bool
    access_token_format: Literal["jwt", "opaque"]
    access_token_ttl: _Ttl | None
    refresh_token_idle_ttl: _Ttl | None
    refresh_token_absolute_ttl: _Ttl | None
    id_token_signed_response_alg: Literal["RS256", "ES256", "EdDSA"]
    post_logout_redirect_uris: list[_Str]
    jwks: Annotated[str, Field(max_length=20000)] | None


@with_config(_CLOSED)
class ClientCreate(_ClientFields, total=False):
    """A client, with the field names of the client's JSON; ``name`` is required."""

    type: Literal["confidential", "public"]
    native: bool
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
    ]


@with_config(_CLOSED)
class ClientUpdate(_ClientFields, total=False):
    """The fields to change (a list replaces the current one); the id and the secret stay.
    The type, the authentication method and nativeness cannot change."""


@with_config(_CLOSED)
class UserCreate(TypedDict, total=False):
    username: _Str
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    email: _Str | None
    email_verified: bool
    name: _Str | None


@with_config(_CLOSED)
class UserUpdate(TypedDict, total=False):
    """A new email is unverified unless ``email_verified`` says otherwise."""

    name: Annotated[str, Field(max_length=2000)]
    email: _Str
    email_verified: bool


@with_config(_CLOSED)
class PasswordReset(TypedDict):
    """A new password: it ends the user's sessions and revokes their grants."""

    password: Annotated[str, Field(min_length=1, max_length=1024)]


@with_config(_CLOSED)
class InvitationCreate(TypedDict, total=False):
    """An invitation to create an account: its link is mailed to ``email`` and is in the
    answer, once."""

    email: _Str
    name: Annotated[str, Field(max_length=200)]
    ttl: Annotated[
        int,
        Field(ge=600, le=30 * 86400, description="Seconds it stays valid (invitation_ttl)."),
    ]


@with_config(_CLOSED)
class KeyRotate(TypedDict, total=False):
    alg: Literal["RS256", "ES256", "EdDSA"]
    publish_ahead: Annotated[int, Field(ge=0, le=30 * 86400)]


#: The required fields of the bodies (``total=False`` shapes, so that a missing one gets this
#: module's message).
_REQUIRED: dict[type[Any], tuple[str, ...]] = {
    ApiCreate: ("identifier", "scopes"),
    ClientCreate: ("name",),
    UserCreate: ("username", "password"),
    InvitationCreate: ("email",),
}


def _validate(shape: type[Any], body: bytes) -> dict[str, Any]:
    try:
        value: dict[str, Any] = TypeAdapter(shape).validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"invalid body: {where}: {first['msg']}") from None
    missing = [name for name in _REQUIRED.get(shape, ()) if name not in value]
    if missing:
        raise InvalidRequest(f"invalid body: missing {', '.join(missing)}")
    return value


# --- the operations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """What an operation gets: the path parameters, the query, the validated body, the
    caller, and the server's mailer (which queues: no answer waits on the mail server)."""

    path: Mapping[str, str]
    query: Mapping[str, str]
    body: dict[str, Any]
    caller: AdminCaller
    mailer: Mailer


#: An operation's answer: the status and the JSON body (``None`` for 204).
Result = tuple[int, dict[str, object] | None]
Run = Callable[[Admin, Call], Awaitable[Result]]

_CLIENT_FIELD = {"type": "client_type", "introspect": "can_introspect"}


def _client_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        out[_CLIENT_FIELD.get(name, name)] = tuple(value) if isinstance(value, list) else value
    return out


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "false")
    if value not in ("true", "false"):
        raise InvalidRequest(f"{name} is true or false")
    return value == "true"


async def list_apis(admin: Admin, c: Call) -> Result:
    return 200, {"apis": [api_json(a) for a in await admin.list_apis()]}


async def create_api(admin: Admin, c: Call) -> Result:
    b = c.body
    api = await admin.create_api(
        identifier=b["identifier"],
        scopes=b["scopes"],
        name=b.get("name"),
        descriptions=b.get("descriptions"),
    )
    return 201, api_json(api)


async def get_api(admin: Admin, c: Call) -> Result:
    return 200, api_json(await admin.require_api(c.path["identifier"]))


async def delete_api(admin: Admin, c: Call) -> Result:
    force = _flag(c.query, "force")
    changed = await admin.delete_api(c.path["identifier"], force=force)
    return 200, {"deleted": c.path["identifier"], "clients_changed": changed}


async def list_clients(admin: Admin, c: Call) -> Result:
    return 200, {"clients": [client_json(x) for x in await admin.list_clients()]}


async def create_client(admin: Admin, c: Call) -> Result:
    fields = _client_fields(c.body)
    fields.setdefault("client_type", "confidential")
    created = await admin.create_client(ClientMetadata(**fields))
    return 201, {**client_json(created.client), "client_secret": created.client_secret}


async def get_client(admin: Admin, c: Call) -> Result:
    return 200, client_json(await admin.require_client(c.path["client_id"]))


async def update_client(admin: Admin, c: Call) -> Result:
    if not c.body:
        raise InvalidRequest("invalid body: name at least one field to change")
    client = await admin.update_client(c.path["client_id"], changes=_client_fields(c.body))
    return 200, client_json(client)


async def delete_client(admin: Admin, c: Call) -> Result:
    await admin.delete_client(c.path["client_id"])
    return 204, None


async def rotate_client_secret(admin: Admin, c: Call) -> Result:
    secret = await admin.rotate_client_secret(c.path["client_id"])
    return 200, {"client_id": c.path["client_id"], "client_secret": secret}


async def list_users(admin: Admin, c: Call) -> Result:
    return 200, {"users": [user_json(u) for u in await admin.list_users()]}


async def create_user(admin: Admin, c: Call) -> Result:
    b = c.body
    user = await admin.create_user(
        username=b["username"],
        password=b["password"],
        email=b.get("email"),
        email_verified=b.get("email_verified", False),
        name=b.get("name"),
    )
    return 201, user_json(user)


async def get_user(admin: Admin, c: Call) -> Result:
    return 200, user_json(await admin.require_user(c.path["user"]))


async def update_user(admin: Admin, c: Call) -> Result:
    if not c.body:
        raise InvalidRequest("invalid body: name at least one field to change")
    user = await admin.update_profile(c.path["user"], **c.body)
    return 200, user_json(user)


async def delete_user(admin: Admin, c: Call) -> Result:
    await admin.delete_user(c.path["user"])
    return 204, None


async def disable_user(admin: Admin, c: Call) -> Result:
    return 200, user_json(await admin.set_disabled(c.path["user"], True))


async def enable_user(admin: Admin, c: Call) -> Result:
    return 200, user_json(await admin.set_disabled(c.path["user"], False))


async def reset_password(admin: Admin, c: Call) -> Result:
    await admin.set_password(c.path["user"], c.body["password"])
    return 204, None


async def create_invitation(admin: Admin, c: Call) -> Result:
    b = c.body
    new = await admin.invite(b["email"], name=b.get("name"), ttl=b.get("ttl"))
    c.mailer.notify(new.notice)
    mailed = c.mailer.backend is not None
    return 201, {**invitation_json(new.token), "link": new.link, "mailed": mailed}


async def list_invitations(admin: Admin, c: Call) -> Result:
    invitations = await admin.list_invitations()
    return 200, {"invitations": [invitation_json(i) for i in invitations]}


async def revoke_invitation(admin: Admin, c: Call) -> Result:
    await admin.revoke_invitation(c.path["email"])
    return 204, None


async def list_grants(admin: Admin, c: Call) -> Result:
    return 200, {"grants": [grant_json(g) for g in await admin.list_grants(c.path["user"])]}


async def revoke_grant(admin: Admin, c: Call) -> Result:
    return 200, grant_json(await admin.revoke_grant(c.path["user"], c.path["grant_id"]))


async def revoke_grants(admin: Admin, c: Call) -> Result:
    return 200, {"revoked": await admin.revoke_grants(c.path["user"])}


async def list_sessions(admin: Admin, c: Call) -> Result:
    sessions = await admin.list_sessions(c.path["user"])
    return 200, {"sessions": [session_json(s) for s in sessions]}


async def end_session(admin: Admin, c: Call) -> Result:
    await admin.end_session(c.path["user"], c.path["session_id"])
    return 204, None


async def end_sessions(admin: Admin, c: Call) -> Result:
    return 200, {"ended": await admin.end_sessions(c.path["user"])}


async def list_keys(admin: Admin, c: Call) -> Result:
    return 200, {"keys": [key_json(s.key, s.state) for s in await admin.key_states()]}


async def rotate_key(admin: Admin, c: Call) -> Result:
    key = await admin.rotate_key(c.body.get("alg"), publish_ahead=c.body.get("publish_ahead"))
    return 201, key_json(key)


async def prune_keys(admin: Admin, c: Call) -> Result:
    return 200, {"pruned": await admin.prune_keys()}


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    resource: AdminResource
    action: AdminAction
    run: Run
    summary: str
    body: type[Any] | None = None
    body_required: bool = True
    status: int = 200
    query: tuple[tuple[str, str], ...] = ()

    @property
    def scope(self) -> str:
        return admin_scope(self.resource, self.action)

    @property
    def name(self) -> str:
        name: str = getattr(self.run, "__name__")  # noqa: B009
        return name


_API = "/apis/{identifier:path}"
_CLIENT = "/clients/{client_id}"
_USER = "/users/{user}"
_INVITATIONS = "/invitations"
_FORCE = (("force", "true: also remove the API from the clients that use it."),)

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/apis", "apis", "read", list_apis, "List the APIs"),
    Operation(
        "POST", "/apis", "apis", "write", create_api, "Register an API", ApiCreate, status=201
    ),
    Operation("GET", _API, "apis", "read", get_api, "An API (identifier percent-encoded)"),
    Operation(
        "DELETE",
        _API,
        "apis",
        "write",
        delete_api,
        "Delete an API (refused while clients use it, unless force=true)",
        query=_FORCE,
    ),
    Operation("GET", "/clients", "clients", "read", list_clients, "List the clients"),
    Operation(
        "POST",
        "/clients",
        "clients",
        "write",
        create_client,
        "Register a client (a confidential client's secret is in the answer, once)",
        ClientCreate,
        status=201,
    ),
    Operation("GET", _CLIENT, "clients", "read", get_client, "A client"),
    Operation(
        "PATCH",
        _CLIENT,
        "clients",
        "write",
        update_client,
        "Change a client (its id and secret stay)",
        ClientUpdate,
    ),
    Operation("DELETE", _CLIENT, "clients", "write", delete_client, "Delete a client", status=204),
    Operation(
        "POST",
        _CLIENT + "/secret",
        "clients",
        "write",
        rotate_client_secret,
        "A new client secret (the old one stops working)",
    ),
    Operation("GET", "/users", "users", "read", list_users, "List the users"),
    Operation(
        "POST", "/users", "users", "write", create_user, "Create a user", UserCreate, status=201
    ),
    Operation("GET", _USER, "users", "read", get_user, "A user (by id, username or email)"),
    Operation(
        "PATCH",
        _USER,
        "users",
        "write",
        update_user,
        "Change a user's name, email, email_verified",
        UserUpdate,
    ),
    Operation(
        "DELETE",
        _USER,
        "users",
        "write",
        delete_user,
        "Delete a user (sessions end, grants are revoked)",
        status=204,
    ),
    Operation(
        "POST",
        _USER + "/disable",
        "users",
        "write",
        disable_user,
        "Disable a user (sessions end, grants are revoked)",
    ),
    Operation("POST", _USER + "/enable", "users", "write", enable_user, "Enable a user again"),
    Operation(
        "POST",
        _USER + "/password",
        "users",
        "write",
        reset_password,
        "Set a new password (sessions end, grants are revoked)",
        PasswordReset,
        status=204,
    ),
    Operation(
        "POST",
        _INVITATIONS,
        "users",
        "write",
        create_invitation,
        "Invite someone to create an account (the link is mailed, and in the answer once)",
        InvitationCreate,
        status=201,
    ),
    Operation(
        "GET",
        _INVITATIONS,
        "users",
        "read",
        list_invitations,
        "The invitations not used, withdrawn or expired yet",
    ),
    Operation(
        "DELETE",
        _INVITATIONS + "/{email}",
        "users",
        "write",
        revoke_invitation,
        "Withdraw the pending invitation to an address",
        status=204,
    ),
    Operation(
        "GET",
        _USER + "/grants",
        "grants",
        "read",
        list_grants,
        "A user's grants, revoked ones included",
    ),
    Operation(
        "DELETE",
        _USER + "/grants",
        "grants",
        "write",
        revoke_grants,
        "Revoke every grant of a user",
    ),
    Operation(
        "DELETE",
        _USER + "/grants/{grant_id}",
        "grants",
        "write",
        revoke_grant,
        "Revoke one grant (its tokens stop working)",
    ),
    Operation(
        "GET", _USER + "/sessions", "sessions", "read", list_sessions, "A user's live sessions"
    ),
    Operation(
        "DELETE",
        _USER + "/sessions",
        "sessions",
        "write",
        end_sessions,
        "End every session of a user",
    ),
    Operation(
        "DELETE",
        _USER + "/sessions/{session_id}",
        "sessions",
        "write",
        end_session,
        "End one session",
        status=204,
    ),
    Operation("GET", "/keys", "keys", "read", list_keys, "The signing keys and what each does now"),
    Operation(
        "POST",
        "/keys/rotate",
        "keys",
        "write",
        rotate_key,
        "Add a signing key (published now, signing after publish_ahead seconds)",
        KeyRotate,
        body_required=False,
        status=201,
    ),
    Operation(
        "POST",
        "/keys/prune",
        "keys",
        "write",
        prune_keys,
        "Delete retired keys whose tokens have all expired",
    ),
)


def handler(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        rt = runtime(request)
        limiter = rt.rate_limiter
        address = request.client.host if request.client else "unknown"
        limits = limiter.for_request(ADMIN_PATH, address)
        try:
            await limits.check_address()
            try:
                token = _bearer(request)
                async with lazy_transaction(rt.db) as stores:
                    caller = await check_admin_access(
                        rt.server.context, token, stores, scope=op.scope
                    )
            except InvalidToken:
                await limits.failed()
                raise
            await limiter.count_caller(ADMIN_PATH, caller.client_id)
            body: dict[str, Any] = {}
            if op.body is not None:
                raw = await read_body(
                    request, rt.settings.max_form_bytes, time_limit=rt.settings.form_read_timeout
                )
                if raw or op.body_required:
                    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
                    if kind != "application/json":
                        raise InvalidRequest(
                            "send the body as JSON (Content-Type: application/json)"
                        )
                    body = _validate(op.body, raw)
            call = Call(
                dict(request.path_params), dict(request.query_params), body, caller, rt.mailer
            )
            try:
                status, result = await op.run(rt.admin, call)
            except AdminError as exc:
                raise _refusal(exc) from None
            if op.resource == "keys" and op.action == "write":
                # this process publishes (and signs with) the new key set now; the others at
                # their next reload (key_reload_interval), as after `tokensmith keys rotate`
                await rt.reload_keys()
        except OAuthError as exc:
            return _error(request, exc, scope=op.scope)
        if op.action == "write":
            # what was changed: named in the path, or made by this request
            made = result or {}
            target = next(iter(call.path.values()), None) or next(
                (
                    str(made[k])
                    for k in ("client_id", "id", "identifier", "kid", "email")
                    if k in made
                ),
                None,
            )
            rt.server.context.emit(
                AuditEvent(
                    f"admin.{op.name}",
                    at=int(rt.clock()),
                    client_id=caller.client_id,
                    address=address,
                    detail={"target": target} if target is not None else {},
                )
            )
        if result is None:
            return Response(status_code=status, headers={"Cache-Control": "no-store"})
        return json_response(result, status=status)

    handle.__name__ = op.name
    return handle


# --- registration and the OpenAPI description --------------------------------------------------


_BODY_SCHEMAS: dict[type[Any], dict[str, Any]] = {}
"""Each body's schema, made once per process: pydantic builds a TypedDict's schema anew each
time (about 4 ms), and every app (each test's) registers the admin operations."""


def _schema(shape: type[Any]) -> dict[str, Any]:
    """The JSON schema of a request body (a copy: FastAPI merges it into the document)."""
    schema = _BODY_SCHEMAS.get(shape)
    if schema is None:
        schema = TypeAdapter(shape).json_schema(ref_template="#/components/schemas/{model}")
        required = _REQUIRED.get(shape)
        if required:
            schema["required"] = list(required)
        _BODY_SCHEMAS[shape] = schema
    return copy.deepcopy(schema)


_CHALLENGE = {
    "WWW-Authenticate": {
        "required": True,
        "description": "RFC 6750 §3.",
        "schema": {"type": "string", "pattern": '^Bearer realm="tokensmith"'},
    }
}
#: The project's JSON error (``server/schemas.py`` defines the component).
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _responses(op: Operation) -> dict[int | str, dict[str, Any]]:
    def error(description: str, **extra: Any) -> dict[str, Any]:
        return {"description": description, "content": _ERROR_BODY, **extra}

    ok: dict[str, Any] = (
        {"description": "Done: no body."}
        if op.status == 204
        else {
            "description": "The result, with the field names of `tokensmith ... --json`.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    )
    return {
        op.status: ok,
        400: error("invalid_request: a bad body or parameter, or the admin service's refusal."),
        401: error(
            "invalid_token: no token, or not an admin API access token.", headers=_CHALLENGE
        ),
        403: error(f"insufficient_scope: the token lacks {op.scope}.", headers=_CHALLENGE),
        404: error("not_found: no such API, client, user, grant or session."),
        408: error("invalid_request: the body did not arrive in time."),
        409: error("conflict: it exists already."),
        413: error("invalid_request: the body is larger than max_form_bytes."),
        429: error("slow_down: too many requests.", headers=_RETRY_AFTER),
        503: error("temporarily_unavailable: a store is down.", headers=_RETRY_AFTER),
    }


def _parameters(op: Operation) -> list[dict[str, Any]]:
    names = [part[1:-1].split(":")[0] for part in op.path.split("/") if part.startswith("{")]
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for n in names
    ]
    params += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string", "enum": ["true", "false"]},
        }
        for name, text in op.query
    ]
    return params


def install(app: FastAPI) -> None:
    """Register every admin operation on ``app``, each described with its security requirement
    (the ``adminToken`` scheme and its scope)."""
    for op in OPERATIONS:
        extra: dict[str, Any] = {"security": [{"adminToken": [op.scope]}]}
        parameters = _parameters(op)
        if parameters:
            extra["parameters"] = parameters
        if op.body is not None:
            extra["requestBody"] = {
                "required": op.body_required,
                "content": {"application/json": {"schema": _schema(op.body)}},
            }
        route = DescribedRoute(
            ADMIN_PATH + op.path,
            handler(op),
            methods=[op.method],
            operation_id=f"admin_{op.name}",
            summary=op.summary,
            tags=["admin"],
            response_class=Response,
            status_code=op.status,
            responses=_responses(op),
            openapi_extra=extra,
        )
        app.router.routes.append(route)


def security_scheme(token_url: str) -> dict[str, Any]:
    """The OAuth 2.0 client-credentials scheme of the admin API, with its scopes."""
    return {
        "type": "oauth2",
        "description": "An access token of this server for the admin API (audience "
        "<issuer>/admin/v1), from a client made by `tokensmith admin bootstrap`.",
        "flows": {
            "clientCredentials": {"tokenUrl": token_url, "scopes": dict(ADMIN_SCOPE_DESCRIPTIONS)}
        },
    }
