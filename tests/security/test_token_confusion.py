"""Token-type confusion (round two; checklist M-03, W-81, W-82): every place that accepts a token
is handed every kind of token the system knows, and only the right kind is accepted.

The table :data:`EXPECTED` is the rule: one row per presented kind, one column per place, ``OK``
where the kind is the one the place is for, ``NO`` everywhere else. A refusal is checked for its
exact form (401 ``invalid_token`` with ``WWW-Authenticate`` at a resource server and at UserInfo,
exactly ``{"active": false}`` at introspection, 200 and nothing revoked at revocation, the error
page at logout, ``invalid_request`` sent to the client at authorize, ``invalid_grant`` or
``invalid_client`` at the token endpoint) and for leaving the server's
state exactly as it was (its token, grant, code, session tables, and its Redis keys). A new token
kind is a new :class:`Kind`, a new row and a branch in :meth:`World._make`; a new place a new
:class:`Place`, a column and a ``present_*`` function.

Everything runs against the real authorization server (in-process over ASGI) on SQLite, and on
PostgreSQL with Redis for codes, login transactions and the JWT deny-list. The resource-server
places are ``tokensmith.resource`` validators talking to that server over HTTP, the way
``docs/examples/resource_opaque.py`` sets them up.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy import text

from tests.resource.forge import forge
from tests.server.harness import (
    API,
    REDIRECT,
    ServerEnv,
    assert_oauth_error,
    assert_page,
    assert_redirect_error,
)
from tests.support.clients import resource_server
from tests.support.private_key_jwt import KeyPair, assertion, pkjwt_client
from tests.support.settings import FAST_HASH, ISSUER
from tokensmith.core.clock import FakeClock
from tokensmith.core.registration import NewClient
from tokensmith.resource import (
    IntrospectionValidator,
    Principal,
    ResourceServer,
    TokenValidator,
    Validator,
)
from tokensmith.settings import Settings

SCOPE = "openid offline_access docs:read"
BACKCHANNEL_LOGOUT = "http://schemas.openid.net/event/backchannel-logout"
STATE_TABLES = (
    "ts_authorization_codes",
    "ts_grants",
    "ts_access_tokens",
    "ts_revoked_jtis",
    "ts_used_jtis",
    "ts_refresh_tokens",
    "ts_sessions",
    "ts_consents",
    "ts_interactions",
)
STATE_REDIS_KEYS = ("code:", "code-used:", "deny:", "ix:", "ajti:")
RS_CHALLENGE = 'Bearer realm="docs", error="invalid_token"'


class Kind(StrEnum):
    """What is presented."""

    ACCESS_JWT = "access_jwt"
    ACCESS_OPAQUE = "access_opaque"
    REFRESH = "refresh"
    ID_TOKEN = "id_token"
    LOGOUT_TOKEN = "logout_token"  # back-channel logout token, typ logout+jwt, our key
    LOGOUT_TOKEN_UNTYPED = "logout_token_untyped"  # the same without typ (older senders)
    CODE = "code"
    CLIENT_ASSERTION = "client_assertion"  # private_key_jwt, aud: token endpoint and the API


class Place(StrEnum):
    """Where it is presented."""

    RS_JWT = "rs_jwt"  # TokenValidator, audience: the API
    RS_JWT_UNTYPED = "rs_jwt_untyped"  # TokenValidator(typ=None), audience: the client's id
    RS_INTROSPECTION = "rs_introspection"  # IntrospectionValidator as a resource server client
    RS_INTROSPECTION_OWNER = "rs_introspection_owner"  # ... as the token's own client
    RS_COMBINED = "rs_combined"  # docs/examples/resource_opaque.py, as is
    USERINFO = "userinfo"
    INTROSPECT = "introspect"  # POST /introspect as a resource server (can_introspect)
    INTROSPECT_OWNER = "introspect_owner"  # ... as the token's own client
    REVOKE = "revoke"  # POST /revoke as another client
    REVOKE_OWNER = "revoke_owner"  # ... as the token's own client
    LOGOUT_HINT = "logout_hint"  # GET /logout?id_token_hint=
    AUTHORIZE_HINT = "authorize_hint"  # GET /authorize?prompt=none&id_token_hint=
    TOKEN_REFRESH = "token_refresh"  # POST /token refresh_token=, as the token's own client
    TOKEN_CODE = "token_code"  # POST /token code=, as the token's own client
    TOKEN_ASSERTION = "token_assertion"  # POST /token client_assertion= (private_key_jwt)
    ADMIN_API = "admin_api"  # GET /admin/v1/users, Bearer


OK, NO = True, False
COLUMNS = tuple(Place)

# fmt: off
# columns, in the order of Place: the RS toolkit 1 rs_jwt 2 rs_jwt_untyped 3 rs_introspection
# 4 rs_introspection_owner 5 rs_combined; the server 6 userinfo 7 introspect 8 introspect_owner
# 9 revoke 10 revoke_owner 11 logout_hint 12 authorize_hint 13 token_refresh 14 token_code
# 15 token_assertion 16 admin_api (none of these tokens is for the admin API's audience; its
# refusal of a refresh token *for* that audience: tests/server/test_admin_api.py)
EXPECTED: dict[Kind, tuple[bool, ...]] = {
    #                           1   2   3   4   5   6   7   8   9   10  11  12  13  14  15  16
    Kind.ACCESS_JWT:           (OK, NO, OK, OK, OK, OK, OK, OK, NO, OK, NO, NO, NO, NO, NO, NO),
    Kind.ACCESS_OPAQUE:        (NO, NO, OK, OK, OK, OK, OK, OK, NO, OK, NO, NO, NO, NO, NO, NO),
    Kind.REFRESH:              (NO, NO, NO, NO, NO, NO, NO, OK, NO, OK, NO, NO, OK, NO, NO, NO),
    Kind.ID_TOKEN:             (NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, OK, OK, NO, NO, NO, NO),
    Kind.LOGOUT_TOKEN:         (NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO),
    Kind.LOGOUT_TOKEN_UNTYPED: (NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO),
    Kind.CODE:                 (NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, OK, NO, NO),
    Kind.CLIENT_ASSERTION:     (NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, OK, NO),
}
# fmt: on
# rs_jwt_untyped accepts nothing here: its audience is the client's id (where an ID token's
# ``aud`` points), so only the kind of each token can refuse the ID and logout tokens; the
# access token fails it for its audience (it is for the API).

CASES = [(kind, place, EXPECTED[kind][i]) for kind in Kind for i, place in enumerate(COLUMNS)]


def test_the_table_covers_every_kind_at_every_place() -> None:
    assert set(EXPECTED) == set(Kind)
    assert all(len(row) == len(COLUMNS) for row in EXPECTED.values())


# -- the server: SQLite, or PostgreSQL with Redis ------------------------------------------------


@pytest.fixture
async def server(
    database_url: str, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[ServerEnv]:
    """The authorization server: on SQLite alone, and on PostgreSQL with Redis for short-lived
    state (codes, login transactions, assertion jtis, the JWT deny-list)."""
    if database_url.startswith("sqlite"):
        settings = Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]
    else:
        settings = request.getfixturevalue("redis_settings")
    async with ServerEnv.start(settings, clock) as env:
        yield env


async def snapshot(env: ServerEnv) -> dict[str, Any]:
    """Everything a token presentation could change: the rows of the token, grant, code and
    session tables, and the Redis keys of codes, transactions, assertion jtis and the deny-list."""
    state: dict[str, Any] = {}
    async with env.admin.db.engine.connect() as conn:
        for table in STATE_TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            state[table] = sorted(repr(tuple(row)) for row in rows)
    if env.settings.redis_url is not None:
        client = aioredis.Redis.from_url(env.settings.redis_url.get_secret_value())
        try:
            prefix = env.settings.redis_prefix
            keys = [key.decode() async for key in client.scan_iter(f"{prefix}*")]
            state["redis"] = sorted(
                k for k in keys if k[len(prefix) :].startswith(STATE_REDIS_KEYS)
            )
        finally:
            await client.aclose()
    return state


# -- the world: a user signed in, her tokens, and the clients around them -----------------------


@dataclass
class World:
    env: ServerEnv
    http: httpx.AsyncClient  # to the authorization server, for the resource-server validators
    ua: httpx.AsyncClient  # alice's browser, signed in
    user_id: str
    web: NewClient  # JWT access tokens; owns the ID token and the code
    opaque: NewClient  # opaque access tokens
    rs: NewClient  # a resource server allowed to introspect (and another client to everyone)
    tokens: dict[Kind, str] = field(default_factory=dict)
    owners: dict[Kind, NewClient] = field(default_factory=dict)
    code_verifier: str = ""
    signer: NewClient | None = None  # a private_key_jwt client

    @classmethod
    async def create(cls, env: ServerEnv, http: httpx.AsyncClient) -> World:
        common: dict[str, Any] = {
            "scopes": SCOPE.split(),
            "grant_types": ["authorization_code", "refresh_token"],
            "post_logout_redirect_uris": ["https://rp.test/bye"],
        }
        web = await env.client(name="CloudDocs Web", **common)
        opaque = await env.client(name="CloudDocs Opaque", access_token_format="opaque", **common)
        rs = await resource_server(env, name="CloudDocs API")
        user = await env.user()
        world = cls(env, http, env.browser(), user.id, web, opaque, rs)
        await world._sign_in(web, Kind.ACCESS_JWT)
        return world

    async def _sign_in(self, client: NewClient, kind: Kind) -> None:
        flow = await self.env.authorize(self.ua, client, scope=SCOPE, nonce="n-0S6")
        response = await self.env.redeem(client, flow.code, flow.verifier)
        assert response.status_code == 200, response.text
        body = response.json()
        self.tokens[kind] = body["access_token"]
        self.owners[kind] = client
        if client is self.web:
            for name, other in (("refresh_token", Kind.REFRESH), ("id_token", Kind.ID_TOKEN)):
                self.tokens[other] = body[name]
                self.owners[other] = client

    async def token(self, kind: Kind) -> str:
        if kind not in self.tokens:
            self.tokens[kind] = await self._make(kind)
            self.owners.setdefault(kind, self.web)
        return self.tokens[kind]

    async def _make(self, kind: Kind) -> str:
        env = self.env
        now = int(env.clock())
        if kind is Kind.ACCESS_OPAQUE:
            await self._sign_in(self.opaque, kind)
            return self.tokens[kind]
        if kind is Kind.CODE:
            flow = await env.authorize(self.ua, self.web, scope=SCOPE)
            self.code_verifier = flow.verifier
            return flow.code
        if kind in (Kind.LOGOUT_TOKEN, Kind.LOGOUT_TOKEN_UNTYPED):
            key = env.app.state.runtime.server.keys.signing_key("ES256", now)
            header = {"alg": key.alg, "kid": key.kid}
            if kind is Kind.LOGOUT_TOKEN:
                header["typ"] = "logout+jwt"
            claims = {
                "iss": env.settings.issuer,
                "sub": self.user_id,
                "aud": [self.web.client.client_id, API],
                "iat": now,
                "exp": now + 120,
                "jti": uuid.uuid4().hex,
                "events": {BACKCHANNEL_LOGOUT: {}},
                "scope": SCOPE,
                "client_id": self.web.client.client_id,
            }
            return forge(header, claims, key.private_key)
        if kind is Kind.CLIENT_ASSERTION:
            keys = KeyPair()
            self.signer = await pkjwt_client(env, keys)
            audience = [env.settings.issuer + env.settings.token_path, API]
            return assertion(env, self.signer, keys, aud=audience, scope=SCOPE)
        raise AssertionError(f"no way to make {kind}")

    def owner(self, kind: Kind) -> NewClient:
        return self.owners[kind]


# -- the places -----------------------------------------------------------------------------------


def _resource_app(validator: Validator) -> FastAPI:
    rs = ResourceServer(validator, realm="docs")
    app = FastAPI()

    @app.get("/api/me")
    async def me(principal: Principal = rs.authenticated) -> dict[str, Any]:
        return {"sub": principal.subject, "client_id": principal.client_id}

    return app


async def _at_resource_server(world: World, validator: Validator, token: str) -> bool:
    transport = httpx.ASGITransport(app=_resource_app(validator))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as api:
        response = await api.get("/api/me", headers={"Authorization": "Bearer " + token})
    if response.status_code == 200:
        assert response.json()["sub"] == world.user_id
        return True
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == RS_CHALLENGE
    assert response.json() == {"detail": "invalid_token"}
    return False


def _introspection(world: World, client: NewClient) -> IntrospectionValidator:
    assert client.client_secret is not None
    return IntrospectionValidator(
        http=world.http,
        issuer=world.env.settings.issuer,
        audience=API,
        client_id=client.client.client_id,
        client_secret=client.client_secret,
        clock=world.env.clock,
    )


def _load_example(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_examples_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def present_rs_jwt(world: World, kind: Kind, token: str) -> bool:
    validator = TokenValidator(
        http=world.http, issuer=world.env.settings.issuer, audience=API, clock=world.env.clock
    )
    return await _at_resource_server(world, validator, token)


async def present_rs_jwt_untyped(world: World, kind: Kind, token: str) -> bool:
    validator = TokenValidator(
        http=world.http,
        issuer=world.env.settings.issuer,
        audience=world.web.client.client_id,
        typ=None,
        clock=world.env.clock,
    )
    return await _at_resource_server(world, validator, token)


async def present_rs_introspection(world: World, kind: Kind, token: str) -> bool:
    return await _at_resource_server(world, _introspection(world, world.rs), token)


async def present_rs_introspection_owner(world: World, kind: Kind, token: str) -> bool:
    return await _at_resource_server(world, _introspection(world, world.owner(kind)), token)


async def present_rs_combined(world: World, kind: Kind, token: str) -> bool:
    assert world.rs.client_secret is not None
    validator = _load_example("resource_opaque").make_validator(
        world.http,
        issuer=world.env.settings.issuer,
        audience=API,
        client_id=world.rs.client.client_id,
        client_secret=world.rs.client_secret,
    )
    return await _at_resource_server(world, validator, token)


async def present_userinfo(world: World, kind: Kind, token: str) -> bool:
    response = await world.env.http.get("/userinfo", headers={"Authorization": "Bearer " + token})
    if response.status_code == 200:
        assert response.json()["sub"] == world.user_id
        return True
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tokensmith", error="invalid_token"'), challenge
    assert response.json()["error"] == "invalid_token"
    return False


async def _introspect_as(world: World, client: NewClient, token: str) -> bool:
    answer = await world.env.introspect(client, token)
    if answer == {"active": False}:
        return False
    assert answer["active"] is True, answer
    assert answer["sub"] == world.user_id
    return True


async def present_introspect(world: World, kind: Kind, token: str) -> bool:
    return await _introspect_as(world, world.rs, token)


async def present_introspect_owner(world: World, kind: Kind, token: str) -> bool:
    return await _introspect_as(world, world.owner(kind), token)


async def _revoke_as(world: World, client: NewClient, token: str) -> bool:
    """Revocation answers 200 whatever happened (RFC 7009 §2.2): "accepted" means something
    was revoked."""
    before = await snapshot(world.env)
    response = await world.env.revoke(client, token)
    assert response.status_code == 200, response.text
    return await snapshot(world.env) != before


async def present_revoke(world: World, kind: Kind, token: str) -> bool:
    return await _revoke_as(world, world.rs, token)


async def present_revoke_owner(world: World, kind: Kind, token: str) -> bool:
    revoked = await _revoke_as(world, world.owner(kind), token)
    if revoked:
        assert await world.env.introspect(world.owner(kind), token) == {"active": False}
    return revoked


async def present_logout_hint(world: World, kind: Kind, token: str) -> bool:
    sessions = await world.env.count("ts_sessions")
    response = await world.ua.get("/logout?" + urlencode({"id_token_hint": token}))
    if response.status_code == 200:
        assert await world.env.count("ts_sessions") == sessions - 1
        return True
    assert_page(response, 400)
    assert "id_token_hint" in response.text
    return False


async def present_authorize_hint(world: World, kind: Kind, token: str) -> bool:
    flow = await world.env.start_authorize(
        world.ua, world.web, scope="openid", prompt="none", id_token_hint=token
    )
    if "code" in flow.result:
        return True
    assert_redirect_error(
        flow.response,
        "invalid_request",
        redirect_uri=REDIRECT,
        state=flow.params["state"],
        issuer=world.env.settings.issuer,
    )
    assert "id_token_hint" in flow.result["error_description"]
    return False


async def _at_token_endpoint(response: httpx.Response, error: str, status: int) -> bool:
    if response.status_code == 200:
        assert response.json()["access_token"]
        return True
    assert_oauth_error(response, error, status)
    return False


async def present_token_refresh(world: World, kind: Kind, token: str) -> bool:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    response = await world.env.token(world.owner(kind), form)
    return await _at_token_endpoint(response, "invalid_grant", 400)


async def present_token_code(world: World, kind: Kind, token: str) -> bool:
    response = await world.env.redeem(world.owner(kind), token, world.code_verifier or "v" * 43)
    return await _at_token_endpoint(response, "invalid_grant", 400)


async def present_token_assertion(world: World, kind: Kind, token: str) -> bool:
    if world.signer is None:
        world.signer = await pkjwt_client(world.env, KeyPair())
    form = {
        "grant_type": "client_credentials",
        "client_id": world.signer.client.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    response = await world.env.token(world.signer, form, auth="raw")
    return await _at_token_endpoint(response, "invalid_client", 401)


async def present_admin_api(world: World, kind: Kind, token: str) -> bool:
    response = await world.env.http.get(
        "/admin/v1/users", headers={"Authorization": "Bearer " + token}
    )
    if response.status_code == 200:
        return True
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tokensmith", error="invalid_token"'), challenge
    assert response.json()["error"] == "invalid_token"
    return False


PRESENT: dict[Place, Callable[[World, Kind, str], Awaitable[bool]]] = {
    Place.RS_JWT: present_rs_jwt,
    Place.RS_JWT_UNTYPED: present_rs_jwt_untyped,
    Place.RS_INTROSPECTION: present_rs_introspection,
    Place.RS_INTROSPECTION_OWNER: present_rs_introspection_owner,
    Place.RS_COMBINED: present_rs_combined,
    Place.USERINFO: present_userinfo,
    Place.INTROSPECT: present_introspect,
    Place.INTROSPECT_OWNER: present_introspect_owner,
    Place.REVOKE: present_revoke,
    Place.REVOKE_OWNER: present_revoke_owner,
    Place.LOGOUT_HINT: present_logout_hint,
    Place.AUTHORIZE_HINT: present_authorize_hint,
    Place.TOKEN_REFRESH: present_token_refresh,
    Place.TOKEN_CODE: present_token_code,
    Place.TOKEN_ASSERTION: present_token_assertion,
    Place.ADMIN_API: present_admin_api,
}


def test_every_place_has_a_way_to_present() -> None:
    assert set(PRESENT) == set(Place)


@pytest.mark.parametrize(
    ("kind", "place", "accepted"),
    [pytest.param(k, p, a, id=f"{k}-at-{p}") for k, p, a in CASES],
)
async def test_only_the_right_kind_of_token_is_accepted(
    server: ServerEnv, kind: Kind, place: Place, accepted: bool
) -> None:
    async with httpx.AsyncClient(
        transport=server.transport, base_url=server.settings.issuer
    ) as http:
        world = await World.create(server, http)
        token = await world.token(kind)
        before = await snapshot(server)
        if server.settings.redis_url is not None:
            assert before["redis"], "Redis holds nothing: the Redis variant would prove nothing"
        outcome = await PRESENT[place](world, kind, token)
        assert outcome is accepted, f"{kind} at {place}: {'accepted' if outcome else 'refused'}"
        if not accepted:
            assert await snapshot(server) == before, "a refused token changed the server's state"
