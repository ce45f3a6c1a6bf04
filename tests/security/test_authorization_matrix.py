"""The authorization model as a declared policy table: which client gets which token for which API.

Every cell (client kind, grant, requested API as ``resource`` of RFC 8707, requested scope) is
run against the real authorization and token endpoints (the in-process app, on SQLite and on
PostgreSQL) and must give exactly the declared outcome: an error code, or a token whose ``aud``
and ``scope`` are the declared ones. Invariants checked on every token besides: the JWT says what
the response says, an ID token comes with ``openid`` and only with it, client credentials never
yield a refresh or ID token, and a token's scope is never empty unless its API defines no scopes.

Dynamic clients (``Client.origin`` ``registered``, RFC 7591, or ``metadata_document``, a Client ID
Metadata Document) have no APIs of their own: they get tokens only for an API open to dynamic
clients (``Api.dynamic_clients``), named by ``resource``, and a request without ``resource`` is
``invalid_target``. Static clients are not affected by the flag either way.

The table is data. ``test_the_table_covers_every_grant_and_client_option`` fails when a grant is
added to the server or an option to ``Client`` until the table (or the list of options it
deliberately leaves out, each with its reason) is extended.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.server.harness import REDIRECT, ServerEnv
from tokensmith.core.models import CLIENT_ORIGINS, Client, ClientOrigin
from tokensmith.core.registration import KNOWN_GRANTS, ClientMetadata, NewClient, new_client
from tokensmith.core.token import default_grants

# -- the world: registered APIs -------------------------------------------------------------------

A = "https://docs.api.test"  # the clients' default API
B = "https://mail.api.test"  # their second API; defines docs:read too (a same-named scope)
E = "https://ping.api.test"  # their third API; defines no scopes
C = "https://admin.api.test"  # registered, but no client of the table may use it
D = "https://tools.api.test"  # open to dynamic clients, not among the static clients' APIs
U = "https://unregistered.api.test"  # not registered at all

APIS: dict[str, tuple[str, tuple[str, ...]]] = {
    A: ("Docs API", ("docs:read", "docs:write")),
    B: ("Mail API", ("docs:read", "mail:send")),
    E: ("Ping API", ()),
    C: ("Admin API", ("docs:read", "admin:all")),
    D: ("Tools API", ("docs:read",)),
}
ALLOWED_APIS = (A, B, E)  # every static client of the table, in this order (A is the default)
DYNAMIC_APIS = (A, B, D)  # open to dynamic clients (E and C are not)

# -- the dimensions -------------------------------------------------------------------------------

RESOURCES: dict[str, str | None] = {
    "none": None,  # no resource parameter: the default API
    "allowed default": A,
    "allowed second": B,
    "allowed, no scopes": E,
    "registered, not allowed": C,
    "unregistered": U,
    "open to dynamic clients only": D,
}
SCOPES: dict[str, str | None] = {
    "none": None,  # no scope parameter
    "API scope": "docs:read",  # defined by A, and under the same name by B and C
    "another API's scope": "mail:send",  # defined only by B
    "openid/offline_access": "openid offline_access",
    "unknown": "bogus:scope",
}
USER_SCOPES = ("openid", "offline_access", "docs:read", "docs:write", "mail:send")
REFRESH_BASE_SCOPE = "openid offline_access docs:read docs:write"  # the grant refreshed (for A)


@dataclass(frozen=True)
class Kind:
    """A kind of client: the registration options the table varies."""

    client_type: str
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...] = ()
    origin: ClientOrigin = "static"


KINDS: dict[str, Kind] = {
    "confidential machine": Kind(
        "confidential", ("client_credentials",), ("docs:read", "docs:write", "mail:send")
    ),
    # allowed only A's docs:write: for B, whose scopes it may not use, no scope is left
    "confidential machine, one scope": Kind(
        "confidential", ("client_credentials",), ("docs:write",)
    ),
    "confidential web": Kind(
        "confidential",
        ("authorization_code", "refresh_token", "client_credentials"),
        USER_SCOPES,
        (REDIRECT,),
    ),
    "public SPA/native": Kind(
        "public", ("authorization_code", "refresh_token"), USER_SCOPES, (REDIRECT,)
    ),
    "registered confidential web": Kind(
        "confidential",
        ("authorization_code", "refresh_token"),
        USER_SCOPES,
        (REDIRECT,),
        origin="registered",
    ),
    # declared no scopes: it may ask the OpenID Connect scopes and the API's; by default the API's
    "metadata-document public": Kind(
        "public",
        ("authorization_code", "refresh_token"),
        (),
        (REDIRECT,),
        origin="metadata_document",
    ),
}

# -- outcomes -------------------------------------------------------------------------------------

TARGET = "invalid_target"
SCOPE = "invalid_scope"
UNAUTHORIZED = "unauthorized_client"


@dataclass(frozen=True)
class Token:
    aud: str
    scope: str

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


Outcome = Token | str
Grid = dict[str, tuple[Outcome, Outcome, Outcome, Outcome, Outcome]]
"""Requested API → the outcome for each requested scope, in the order of ``SCOPES``."""


def everywhere(outcome: Outcome) -> Grid:
    return {resource: (outcome,) * 5 for resource in RESOURCES}


# A user's authorization (web app, SPA): the code's token, after login and consent.
USER_GRANT: Grid = {
    "none": (
        Token(A, "openid offline_access docs:read docs:write"),
        Token(A, "docs:read"),
        SCOPE,
        Token(A, "openid offline_access"),
        SCOPE,
    ),
    "allowed default": (
        Token(A, "openid offline_access docs:read docs:write"),
        Token(A, "docs:read"),
        SCOPE,
        Token(A, "openid offline_access"),
        SCOPE,
    ),
    "allowed second": (
        Token(B, "openid offline_access docs:read mail:send"),
        Token(B, "docs:read"),
        Token(B, "mail:send"),
        Token(B, "openid offline_access"),
        SCOPE,
    ),
    "allowed, no scopes": (
        Token(E, "openid offline_access"),
        SCOPE,
        SCOPE,
        Token(E, "openid offline_access"),
        SCOPE,
    ),
    "registered, not allowed": (TARGET,) * 5,
    "unregistered": (TARGET,) * 5,
    "open to dynamic clients only": (TARGET,) * 5,
}

# A refresh of a grant for A with REFRESH_BASE_SCOPE: the same API only, the scope may narrow.
REFRESH: Grid = {
    "none": (
        Token(A, REFRESH_BASE_SCOPE),
        Token(A, "docs:read"),
        SCOPE,
        Token(A, "openid offline_access"),
        SCOPE,
    ),
    "allowed default": (
        Token(A, REFRESH_BASE_SCOPE),
        Token(A, "docs:read"),
        SCOPE,
        Token(A, "openid offline_access"),
        SCOPE,
    ),
    "allowed second": (TARGET,) * 5,
    "allowed, no scopes": (TARGET,) * 5,
    "registered, not allowed": (TARGET,) * 5,
    "unregistered": (TARGET,) * 5,
    "open to dynamic clients only": (TARGET,) * 5,
}

# A confidential client for itself: its allowed scopes that the API defines, no OpenID scopes.
CLIENT_CREDENTIALS: Grid = {
    "none": (Token(A, "docs:read docs:write"), Token(A, "docs:read"), SCOPE, SCOPE, SCOPE),
    "allowed default": (
        Token(A, "docs:read docs:write"),
        Token(A, "docs:read"),
        SCOPE,
        SCOPE,
        SCOPE,
    ),
    "allowed second": (
        Token(B, "docs:read mail:send"),
        Token(B, "docs:read"),
        Token(B, "mail:send"),
        SCOPE,
        SCOPE,
    ),
    # the one case of an empty scope: the API defines none
    "allowed, no scopes": (Token(E, ""), SCOPE, SCOPE, SCOPE, SCOPE),
    "registered, not allowed": (TARGET,) * 5,
    "unregistered": (TARGET,) * 5,
    "open to dynamic clients only": (TARGET,) * 5,
}

CLIENT_CREDENTIALS_ONE_SCOPE: Grid = {
    "none": (Token(A, "docs:write"), SCOPE, SCOPE, SCOPE, SCOPE),
    "allowed default": (Token(A, "docs:write"), SCOPE, SCOPE, SCOPE, SCOPE),
    # B defines scopes, the client may use none of them: refused, not an empty-scope token
    "allowed second": (SCOPE,) * 5,
    "allowed, no scopes": (Token(E, ""), SCOPE, SCOPE, SCOPE, SCOPE),
    "registered, not allowed": (TARGET,) * 5,
    "unregistered": (TARGET,) * 5,
    "open to dynamic clients only": (TARGET,) * 5,
}

NOT_DYNAMIC = ("allowed, no scopes", "registered, not allowed", "unregistered")


def dynamic(grid: dict[str, tuple[Outcome, ...]]) -> Grid:
    """A dynamic client's grid: the rows given, ``invalid_target`` for every API closed to
    dynamic clients or not registered."""
    rows: Grid = {label: (TARGET,) * 5 for label in NOT_DYNAMIC}  # type: ignore[misc]
    rows.update(grid)  # type: ignore[arg-type]
    return rows


DYNAMIC_USER_GRANT = dynamic(
    {
        "none": (TARGET,) * 5,  # a dynamic client must name the API
        "allowed default": USER_GRANT["allowed default"],
        "allowed second": USER_GRANT["allowed second"],
        "open to dynamic clients only": (
            Token(D, "openid offline_access docs:read"),
            Token(D, "docs:read"),
            SCOPE,
            Token(D, "openid offline_access"),
            SCOPE,
        ),
    }
)

# declared no scopes: the API's scopes by default, OpenID Connect ones when asked
METADATA_DOCUMENT_USER_GRANT = dynamic(
    {
        "none": (TARGET,) * 5,
        "allowed default": (
            Token(A, "docs:read docs:write"),
            Token(A, "docs:read"),
            SCOPE,
            Token(A, "openid offline_access"),
            SCOPE,
        ),
        "allowed second": (
            Token(B, "docs:read mail:send"),
            Token(B, "docs:read"),
            Token(B, "mail:send"),
            Token(B, "openid offline_access"),
            SCOPE,
        ),
        "open to dynamic clients only": (
            Token(D, "docs:read"),
            Token(D, "docs:read"),
            SCOPE,
            Token(D, "openid offline_access"),
            SCOPE,
        ),
    }
)

# the grant refreshed is for A (asked with resource=A); without resource a refresh stays on it
DYNAMIC_REFRESH = dynamic(
    {
        "none": REFRESH["none"],
        "allowed default": REFRESH["allowed default"],
        "allowed second": (TARGET,) * 5,
        "open to dynamic clients only": (TARGET,) * 5,
    }
)

POLICY: dict[str, dict[str, Grid]] = {
    "confidential machine": {
        "authorization_code": everywhere(UNAUTHORIZED),
        "client_credentials": CLIENT_CREDENTIALS,
        "refresh_token": everywhere(UNAUTHORIZED),
    },
    "confidential machine, one scope": {
        "authorization_code": everywhere(UNAUTHORIZED),
        "client_credentials": CLIENT_CREDENTIALS_ONE_SCOPE,
        "refresh_token": everywhere(UNAUTHORIZED),
    },
    "confidential web": {
        "authorization_code": USER_GRANT,
        "client_credentials": CLIENT_CREDENTIALS,
        "refresh_token": REFRESH,
    },
    "public SPA/native": {
        "authorization_code": USER_GRANT,
        "client_credentials": everywhere(UNAUTHORIZED),
        "refresh_token": REFRESH,
    },
    "registered confidential web": {
        "authorization_code": DYNAMIC_USER_GRANT,
        # a registered client has no API of its own: client_credentials is refused at
        # registration (core.dynamic_registration), so the grant is never its own
        "client_credentials": everywhere(UNAUTHORIZED),
        "refresh_token": DYNAMIC_REFRESH,
    },
    "metadata-document public": {
        "authorization_code": METADATA_DOCUMENT_USER_GRANT,
        "client_credentials": everywhere(UNAUTHORIZED),
        "refresh_token": DYNAMIC_REFRESH,
    },
}

# Options of ``Client`` and how the table treats them. A new option fails the coverage test until
# it is listed here: either varied by ``KINDS`` or left out for the reason given.
CLIENT_OPTIONS: dict[str, str] = {
    "client_type": "varied (confidential, public)",
    "grant_types": "varied (each kind's grants; the others are unauthorized_client)",
    "scopes": "varied (full set, one scope)",
    "apis": "fixed to ALLOWED_APIS; the RESOURCES dimension covers allowed and not allowed",
    "redirect_uris": "varied (machines have none); redirect checks: tests/server/test_authorize",
    "client_id": "an identifier",
    "name": "shown on the consent page only",
    "token_endpoint_auth_method": "how a client authenticates, not what it may get",
    "first_party": "skips consent, never widens it: test_first_party_client_is_bound_to_its_apis",
    "native": "loopback redirect ports only",
    "can_introspect": "the introspection endpoint, not issuance",
    "mfa_required": "how the user signs in, never what the client gets: "
    "tests/server/test_client_mfa.py",
    "access_token_format": "the token's form (opaque tokens carry the same aud/scope records)",
    "access_token_ttl": "lifetime only",
    "refresh_token_idle_ttl": "lifetime only",
    "refresh_token_absolute_ttl": "lifetime only",
    "id_token_signed_response_alg": "ID token algorithm only",
    "post_logout_redirect_uris": "logout only",
    "jwks": "private_key_jwt authentication only",
    "jwks_uri": "private_key_jwt authentication only",
    "secret_digest": "authentication only",
    "created_at": "bookkeeping",
    "origin": "varied (static, registered, metadata_document)",
    "registration_token_digest": "manages the registration (RFC 7592), never a token grant",
    "last_used_at": "bookkeeping (pruning of idle registered clients)",
}


def test_the_table_covers_every_grant_and_client_option() -> None:
    assert set(default_grants()) == set(KNOWN_GRANTS)
    for kind, grids in POLICY.items():
        assert kind in KINDS
        assert set(grids) == set(KNOWN_GRANTS), f"{kind}: a grant is missing from the table"
        for grid in grids.values():
            assert set(grid) == set(RESOURCES)
            assert all(len(row) == len(SCOPES) for row in grid.values())
    assert set(POLICY) == set(KINDS)
    assert {kind.origin for kind in KINDS.values()} == set(CLIENT_ORIGINS)
    assert {f.name for f in dataclasses.fields(Client)} == set(CLIENT_OPTIONS), (
        "a client option is new (or gone): vary it in KINDS or say in CLIENT_OPTIONS why "
        "it does not change which token a client gets"
    )


# -- running the table ----------------------------------------------------------------------------


@dataclass
class World:
    env: ServerEnv
    clients: dict[str, NewClient]
    ua: Any  # one browser, signed in as alice, for every user grant of the test


async def build_world(env: ServerEnv) -> World:
    for identifier, (name, scopes) in APIS.items():
        await env.admin.create_api(
            identifier=identifier,
            scopes=scopes,
            name=name,
            dynamic_clients=identifier in DYNAMIC_APIS,
        )
    clients = {}
    for label, kind in KINDS.items():
        if kind.origin != "static":
            # as dynamic registration or a metadata document would make it (those paths have
            # their own tests); what matters here is the origin
            created = new_client(
                ClientMetadata(
                    name=label,
                    client_type=kind.client_type,  # type: ignore[arg-type]
                    redirect_uris=kind.redirect_uris,
                    grant_types=kind.grant_types,
                    scopes=kind.scopes,
                ),
                now=env.admin.now(),
                pepper=await env.admin.pepper(),
                origin=kind.origin,
            )
            async with env.admin.db.transaction() as stores:
                await stores.clients.create(created.client)
            clients[label] = created
            continue
        clients[label] = await env.admin.create_client(
            name=label,
            client_type=kind.client_type,  # type: ignore[arg-type]
            redirect_uris=kind.redirect_uris,
            grant_types=kind.grant_types,
            scopes=kind.scopes,
            apis=ALLOWED_APIS,
        )
    await env.user()
    return World(env, clients, env.browser())


def params(resource: str | None, scope: str | None) -> dict[str, str]:
    out = {}
    if resource is not None:
        out["resource"] = resource
    if scope is not None:
        out["scope"] = scope
    return out


async def run_cell(
    world: World, kind: str, grant: str, resource: str | None, scope: str | None
) -> Outcome:
    env, client = world.env, world.clients[kind]
    if grant not in client.client.grant_types:
        form = {"grant_type": grant, "code": "x", "refresh_token": "x", **params(resource, scope)}
        return await token_outcome(world, client, grant, await env.token(client, form))
    if grant == "client_credentials":
        form = {"grant_type": grant, **params(resource, scope)}
        return await token_outcome(world, client, grant, await env.token(client, form))
    auth = "basic" if client.client_secret else "none"
    if grant == "authorization_code":
        flow = await env.authorize(world.ua, client, scope=scope, resource=resource)
        if "error" in flow.result:
            return flow.result["error"]
        response = await env.redeem(client, flow.code, flow.verifier, auth=auth)
        return await token_outcome(world, client, grant, response)
    # refresh_token: a fresh grant for the default API (named: dynamic clients have no default),
    # then the refresh under test
    flow = await env.authorize(world.ua, client, scope=REFRESH_BASE_SCOPE, resource=A)
    first = await env.redeem(client, flow.code, flow.verifier, auth=auth)
    assert first.status_code == 200, first.text
    form = {"grant_type": grant, "refresh_token": first.json()["refresh_token"]}
    response = await env.token(client, {**form, **params(resource, scope)}, auth=auth)
    return await token_outcome(world, client, grant, response)


async def token_outcome(world: World, client: NewClient, grant: str, response: Any) -> Outcome:
    body = response.json()
    if response.status_code != 200:
        assert response.status_code in (400, 401), response.text
        assert "no-store" in response.headers["cache-control"]
        return str(body["error"])
    unverified = jwt.decode(body["access_token"], options={"verify_signature": False})
    aud = unverified["aud"]
    # signature, issuer, typ and that audience, checked against the server's JWKS
    claims = await world.env.decode_access_token(body["access_token"], audience=aud)
    scope = body.get("scope", "")
    # the invariants of every token
    assert claims.get("scope", "") == scope, (claims, body)
    assert claims["client_id"] == client.client.client_id
    assert scope or not APIS[aud][1], f"an empty scope for {aud}, which defines scopes"
    has_openid = "openid" in scope.split()
    assert ("id_token" in body) == has_openid, body.keys()
    if grant == "client_credentials":
        assert "refresh_token" not in body
        assert claims["sub"] == client.client.client_id
    return Token(aud, scope)


def same(actual: Outcome, expected: Outcome) -> bool:
    if isinstance(expected, Token) and isinstance(actual, Token):
        return actual.aud == expected.aud and actual.scopes == expected.scopes
    return actual == expected


@pytest.mark.parametrize("grant", sorted(KNOWN_GRANTS))
@pytest.mark.parametrize("kind", list(KINDS))
async def test_authorization_matrix(server_env: ServerEnv, kind: str, grant: str) -> None:
    world = await build_world(server_env)
    grid = POLICY[kind][grant]
    wrong = []
    for resource_label, resource in RESOURCES.items():
        for (scope_label, scope), expected in zip(
            SCOPES.items(), grid[resource_label], strict=True
        ):
            actual = await run_cell(world, kind, grant, resource, scope)
            if not same(actual, expected):
                wrong.append(
                    f"resource={resource_label}, scope={scope_label}: {actual} != {expected}"
                )
    assert not wrong, f"{kind} / {grant}:\n" + "\n".join(wrong)
