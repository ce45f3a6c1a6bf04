"""Dynamic client registration (RFC 7591) and its management (RFC 7592) over HTTP, on SQLite and
PostgreSQL (and Redis for the shared rate limit): each ``registration`` mode, each validation
refusal (nothing written), the registration access token's rotation, management with a wrong
token, the per-address rate limit, pruning of idle registered clients, and a registered client's
full code + PKCE + resource flow for an API open to dynamic clients (and ``invalid_target`` for
one that is not)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_HASH, ISSUER
from tests.server.harness import ServerEnv, assert_oauth_error, query_of
from tests.support.clients import refresh
from tokensmith.core.clock import FakeClock
from tokensmith.core.registration import NewClient
from tokensmith.settings import Settings

MCP_API = "https://mcp.test/mcp"
CLOSED_API = "https://closed.test"
WEB = {
    "client_name": "Agent",
    "redirect_uris": ["https://agent.test/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
}
NATIVE = {
    "client_name": "Desktop agent",
    "application_type": "native",
    "redirect_uris": ["http://127.0.0.1/callback"],
    "token_endpoint_auth_method": "none",
}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def base(request: pytest.FixtureRequest, database_url: str) -> Iterator[Settings]:
    if request.param == "redis":
        yield request.getfixturevalue("redis_settings")
    else:
        yield Settings(issuer=ISSUER, database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]


@asynccontextmanager
async def started(base: Settings, clock: FakeClock, **changes: Any) -> AsyncIterator[ServerEnv]:
    async with ServerEnv.start(base.model_copy(update=changes), clock) as env:
        yield env


async def register(
    env: ServerEnv, body: Any, *, token: str | None = None, address: str = "198.51.100.7"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=env.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=env.settings.issuer) as http:
        return await http.post("/register", json=body, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def registered_client(env: ServerEnv, answer: dict[str, Any]) -> NewClient:
    client = await env.admin.get_client(answer["client_id"])
    assert client is not None
    return NewClient(client, answer.get("client_secret"))


# -- modes -------------------------------------------------------------------------------------


async def test_off_has_no_endpoint_and_advertises_none(base: Settings, clock: FakeClock) -> None:
    async with started(base, clock, registration="off") as env:
        assert (await register(env, WEB)).status_code == 404
        metadata = (await env.http.get("/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in metadata
        assert await env.count("ts_clients") == 0


async def test_open_registers_anyone(base: Settings, clock: FakeClock) -> None:
    async with started(base, clock, registration="open") as env:
        metadata = (await env.http.get("/.well-known/openid-configuration")).json()
        assert metadata["registration_endpoint"] == f"{ISSUER}/register"
        response = await register(env, NATIVE)
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["client_id_issued_at"] == int(clock())
        assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
        assert body["registration_access_token"].startswith("ts_rat_")
        assert body["token_endpoint_auth_method"] == "none"
        assert body["application_type"] == "native"
        assert "client_secret" not in body
        client = await env.admin.get_client(body["client_id"])
        assert client is not None
        assert client.origin == "registered"
        assert client.native
        assert not client.first_party
        # only the digest is stored
        assert body["registration_access_token"] not in str(client.registration_token_digest)


async def test_token_mode_needs_a_live_initial_access_token(
    base: Settings, clock: FakeClock
) -> None:
    async with started(base, clock) as env:
        assert env.settings.registration == "token"  # the default
        for token in (None, "ts_iat_forged"):
            refused = await register(env, WEB, token=token)
            assert_oauth_error(refused, "invalid_token", 401)
            assert "Bearer" in refused.headers["www-authenticate"]
        assert await env.count("ts_clients") == 0
        token, _ = await env.admin.create_initial_access_token(uses=1, expires_in=3600)
        # refused metadata does not spend the use
        bad = await register(env, {**WEB, "redirect_uris": ["javascript:alert(1)"]}, token=token)
        assert_oauth_error(bad, "invalid_redirect_uri")
        first = await register(env, WEB, token=token)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["client_secret"].startswith("ts_cs_")
        assert body["client_secret_expires_at"] == 0
        assert body["token_endpoint_auth_method"] == "client_secret_basic"
        assert_oauth_error(await register(env, WEB, token=token), "invalid_token", 401)
        # an expired token is refused too
        later, _ = await env.admin.create_initial_access_token(expires_in=60)
        clock.advance(61)
        assert_oauth_error(await register(env, WEB, token=later), "invalid_token", 401)
        assert await env.count("ts_clients") == 1


# -- validation: the rules of `clients create`, nothing written on refusal -----------------------

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("javascript", {**WEB, "redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ("data", {**WEB, "redirect_uris": ["data:text/html,hi"]}, "invalid_redirect_uri"),
    ("fragment", {**WEB, "redirect_uris": ["https://agent.test/cb#x"]}, "invalid_redirect_uri"),
    ("web over http", {**WEB, "redirect_uris": ["http://agent.test/cb"]}, "invalid_redirect_uri"),
    (
        "native over http off loopback",
        {**NATIVE, "redirect_uris": ["http://agent.test/cb"]},
        "invalid_redirect_uri",
    ),
    ("no redirect", {**WEB, "redirect_uris": []}, "invalid_client_metadata"),
    ("implicit", {**WEB, "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ("password", {**WEB, "grant_types": ["password"]}, "invalid_client_metadata"),
    ("unknown grant", {**WEB, "grant_types": ["urn:x"]}, "invalid_client_metadata"),
    (
        "client credentials",
        {**WEB, "grant_types": ["client_credentials"]},
        "invalid_client_metadata",
    ),
    ("token response", {**WEB, "response_types": ["token"]}, "invalid_client_metadata"),
    ("application type", {**WEB, "application_type": "tv"}, "invalid_client_metadata"),
    (
        "native secret",
        {**NATIVE, "token_endpoint_auth_method": "client_secret_basic"},
        "invalid_client_metadata",
    ),
    (
        "unknown method",
        {**WEB, "token_endpoint_auth_method": "tls_client_auth"},
        "invalid_client_metadata",
    ),
    (
        "private_key_jwt without keys",
        {**WEB, "token_endpoint_auth_method": "private_key_jwt"},
        "invalid_client_metadata",
    ),
    (
        "jwks_uri",
        {
            **WEB,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://agent.test/jwks",
        },
        "invalid_client_metadata",
    ),
    (
        "private key material",
        {
            **WEB,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]},
        },
        "invalid_client_metadata",
    ),
    (
        "redirect_uris not a list",
        {**WEB, "redirect_uris": "https://agent.test/cb"},
        "invalid_client_metadata",
    ),
    ("name not a string", {**WEB, "client_name": 7}, "invalid_client_metadata"),
    ("not an object", ["https://agent.test/cb"], "invalid_client_metadata"),
]


@pytest.mark.parametrize(
    ("body", "error"), [pytest.param(b, e, id=name) for name, b, e in REFUSALS]
)
async def test_refused_metadata(
    server_env: ServerEnv, clock: FakeClock, body: Any, error: str
) -> None:
    env = server_env
    token, _ = await env.admin.create_initial_access_token()
    before = await env.row_counts()
    assert_oauth_error(await register(env, body, token=token), error)
    assert await env.row_counts() == before


async def test_malformed_bodies(server_env: ServerEnv) -> None:
    env = server_env
    token, _ = await env.admin.create_initial_access_token()
    async with env.browser() as http:
        headers = bearer(token)
        not_json = await http.post(
            "/register", content=b"{", headers={**headers, "Content-Type": "application/json"}
        )
        assert_oauth_error(not_json, "invalid_client_metadata")
        form = await http.post("/register", data={"client_name": "x"}, headers=headers)
        assert_oauth_error(form, "invalid_request")
        huge = await http.post(
            "/register",
            json={**WEB, "client_name": "x" * 2 * env.settings.max_form_bytes},
            headers=headers,
        )
        assert_oauth_error(huge, "invalid_request", 413)
    assert await env.count("ts_clients") == 0


async def test_self_declared_privileges_are_ignored(server_env: ServerEnv) -> None:
    env = server_env
    await env.admin.create_api(identifier=CLOSED_API, scopes=["x"])
    token, _ = await env.admin.create_initial_access_token()
    body = {**WEB, "first_party": True, "apis": [CLOSED_API], "can_introspect": True}
    answer = (await register(env, body, token=token)).json()
    client = await env.admin.get_client(answer["client_id"])
    assert client is not None
    assert not client.first_party
    assert not client.can_introspect
    assert client.apis == ()


# -- management (RFC 7592) ------------------------------------------------------------------------


async def test_read_update_rotates_and_delete(server_env: ServerEnv) -> None:
    env = server_env
    token, _ = await env.admin.create_initial_access_token()
    answer = (await register(env, WEB, token=token)).json()
    other = (await register(env, NATIVE, token=token)).json()
    uri = answer["registration_client_uri"].removeprefix(ISSUER)
    old = answer["registration_access_token"]
    http = env.http
    read = await http.get(uri, headers=bearer(old))
    assert read.status_code == 200
    assert read.json()["redirect_uris"] == WEB["redirect_uris"]
    assert "client_secret" not in read.json()
    for wrong in (bearer("ts_rat_wrong"), bearer(other["registration_access_token"]), {}):
        refused = await http.get(uri, headers=wrong)
        assert_oauth_error(refused, "invalid_token", 401)
        assert_oauth_error(await http.delete(uri, headers=wrong), "invalid_token", 401)
    # an unknown client answers as a wrong token does (nothing to learn)
    assert_oauth_error(
        await http.get("/register/ts_ci_nope", headers=bearer(old)), "invalid_token", 401
    )
    change = {**WEB, "client_id": answer["client_id"], "redirect_uris": ["https://agent.test/2"]}
    updated = await http.put(uri, json=change, headers=bearer(old))
    assert updated.status_code == 200, updated.text
    new = updated.json()["registration_access_token"]
    assert new != old
    assert_oauth_error(await http.get(uri, headers=bearer(old)), "invalid_token", 401)
    assert (await http.get(uri, headers=bearer(new))).json()["redirect_uris"] == [
        "https://agent.test/2"
    ]
    client = await env.admin.get_client(answer["client_id"])
    assert client is not None
    assert client.origin == "registered"
    # refused updates change nothing and keep the token
    for bad in (
        {**change, "client_id": other["client_id"]},
        {**change, "token_endpoint_auth_method": "none"},
        {**change, "redirect_uris": ["javascript:x"]},
        {**change, "client_secret": "ts_cs_wrong"},
    ):
        assert (await http.put(uri, json=bad, headers=bearer(new))).status_code == 400
    assert (await http.get(uri, headers=bearer(new))).status_code == 200
    assert (await http.delete(uri, headers=bearer(new))).status_code == 204
    assert await env.admin.get_client(answer["client_id"]) is None
    assert_oauth_error(await http.get(uri, headers=bearer(new)), "invalid_token", 401)


async def test_an_update_dropping_a_scope_revokes_the_grants_that_hold_it(
    server_env: ServerEnv,
) -> None:
    """RFC 7592 §2.2: a scope the client no longer declares takes its grants that hold it with
    it (their refresh tokens), as ``clients update --remove-scope`` does; the update's audit
    event says how many. Its grants without that scope stay."""
    env = server_env
    await env.admin.create_api(
        identifier=MCP_API, scopes=["mcp:tools", "mcp:read"], name="MCP", dynamic_clients=True
    )
    await env.user()
    token, _ = await env.admin.create_initial_access_token()
    answer = (await register(env, {**WEB, "scope": "mcp:tools mcp:read"}, token=token)).json()
    client = await registered_client(env, answer)
    tokens: dict[str, dict[str, Any]] = {}
    ua = env.browser()
    for scope in ("mcp:tools", "mcp:read"):
        flow = await env.authorize(ua, client, scope=scope, resource=MCP_API)
        response = await env.redeem(client, flow.code, flow.verifier)
        assert response.status_code == 200, response.text
        tokens[scope] = response.json()
    change = {**WEB, "client_id": answer["client_id"], "scope": "mcp:read"}
    uri = answer["registration_client_uri"].removeprefix(ISSUER)
    updated = await env.http.put(
        uri, json=change, headers=bearer(answer["registration_access_token"])
    )
    assert updated.status_code == 200, updated.text
    dropped = tokens["mcp:tools"]["refresh_token"]
    assert_oauth_error(await refresh(env, client, dropped), "invalid_grant")
    assert (await refresh(env, client, tokens["mcp:read"]["refresh_token"])).status_code == 200
    await env.app.state.runtime.audit.flush()
    detail = await env.scalar(
        "SELECT detail FROM ts_audit_events WHERE event = 'client.registration_updated'"
    )
    detail = detail if isinstance(detail, dict) else json.loads(detail)
    assert detail["revoked_grants"] == "1"


@pytest.mark.parametrize("change", ["update", "delete"])
async def test_a_request_racing_a_change_does_not_keep_the_old_client(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """RFC 7592: an update or a deletion takes effect in this process at once. A request that
    loads the client between the change and its commit reads the client as it was (PostgreSQL:
    the committed row) and puts it in the client cache; the change must still win once it is
    committed. (The cache was invalidated before the commit only: the deleted client kept
    authenticating, the replaced redirect URI kept being accepted, for ``client_cache_ttl``.)"""
    env = server_env
    if not env.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: on SQLite the racing request waits for the one connection")
    token, _ = await env.admin.create_initial_access_token()
    answer = (await register(env, WEB, token=token)).json()
    client_id, secret = answer["client_id"], answer["client_secret"]
    uri = answer["registration_client_uri"].removeprefix(ISSUER)

    async def revoke() -> int:
        sent = await env.http.post("/revoke", data={"token": "ts_rt_x"}, auth=(client_id, secret))
        return sent.status_code

    db = env.app.state.runtime.db
    real = db.transaction
    raced: list[int] = []

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        first = not raced
        raced.append(0)
        async with real() as stores:
            yield stores
            if first:  # the change is made, not committed yet: a request loads the client
                raced[0] = await revoke()

    monkeypatch.setattr(db, "transaction", transaction)
    headers = bearer(answer["registration_access_token"])
    if change == "update":
        moved = {**WEB, "client_id": client_id, "redirect_uris": ["https://agent.test/2"]}
        assert (await env.http.put(uri, json=moved, headers=headers)).status_code == 200
    else:
        assert (await env.http.delete(uri, headers=headers)).status_code == 204
    monkeypatch.undo()
    assert raced[0] == 200  # the racing request was served the client as it was
    if change == "delete":
        assert await revoke() == 401
        return
    old = await env.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": WEB["redirect_uris"][0],
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    assert old.status_code == 400, old.headers.get("location")  # a page, not a redirect
    assert "location" not in old.headers


async def test_static_clients_cannot_be_managed(server_env: ServerEnv) -> None:
    env = server_env
    static = await env.client()
    assert_oauth_error(
        await env.http.get(f"/register/{static.client.client_id}", headers=bearer("x")),
        "invalid_token",
        401,
    )


# -- rate limit ---------------------------------------------------------------------------------


async def test_registrations_are_rate_limited_per_address(base: Settings, clock: FakeClock) -> None:
    async with started(base, clock, registration="open", registration_rate_limit="2/hour") as env:
        for _ in range(2):
            assert (await register(env, NATIVE)).status_code == 201
        limited = await register(env, NATIVE)
        assert_oauth_error(limited, "slow_down", 429)
        assert int(limited.headers["retry-after"]) > 0
        assert (await register(env, NATIVE, address="203.0.113.5")).status_code == 201
        assert await env.count("ts_clients") == 3


# -- the flow, the resource rule, the consent mark, last use and pruning -------------------------


async def _open_apis(env: ServerEnv) -> None:
    await env.admin.create_api(
        identifier=MCP_API, scopes=["mcp:tools"], name="MCP", dynamic_clients=True
    )
    await env.admin.create_api(identifier=CLOSED_API, scopes=["mcp:tools"], name="Closed")


async def _full_flow(env: ServerEnv, client: NewClient) -> dict[str, Any]:
    async with env.browser() as ua:
        flow = await env.authorize(ua, client, scope="mcp:tools", resource=MCP_API)
        response = await env.redeem(client, flow.code, flow.verifier, resource=MCP_API)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_registered_client_full_flow_and_resource_rule(
    base: Settings, clock: FakeClock
) -> None:
    async with started(base, clock, registration="open") as env:
        await _open_apis(env)
        await env.user()
        client = await registered_client(env, (await register(env, WEB)).json())
        async with env.browser() as ua:
            start = await env.start_authorize(ua, client, scope="mcp:tools", resource=MCP_API)
            page = await env.login(ua, start.response, decision=None)
            assert "registered itself dynamically" in page.text
        tokens = await _full_flow(env, client)
        claims = await env.decode_access_token(tokens["access_token"], audience=MCP_API)
        assert claims["aud"] == MCP_API
        assert claims["client_id"] == client.client.client_id
        async with env.browser() as ua:
            refused = await env.start_authorize(ua, client, scope="mcp:tools", resource=CLOSED_API)
        location = refused.response.headers["location"]
        assert query_of(location)["error"] == "invalid_target"


async def test_static_client_consent_has_no_mark(server_env: ServerEnv) -> None:
    env = server_env
    await env.user()
    client = await env.client()
    async with env.browser() as ua:
        start = await env.start_authorize(ua, client)
        page = await env.login(ua, start.response, decision=None)
    assert page.status_code == 200
    assert "registered itself dynamically" not in page.text


async def test_last_use_is_written_once_a_day_and_idle_clients_are_pruned(
    base: Settings, clock: FakeClock
) -> None:
    async with started(base, clock, registration="open") as env:
        await _open_apis(env)
        await env.user()
        idle = (await register(env, WEB)).json()
        active = await registered_client(env, (await register(env, WEB)).json())
        static = await env.client()
        clock.advance(80 * 86400)
        await _full_flow(env, active)
        first_use = int(clock())
        sql = "SELECT last_used_at FROM ts_clients WHERE client_id = :c"
        assert await env.scalar(sql, c=active.client.client_id) == first_use
        clock.advance(3600)
        await _full_flow(env, active)
        assert await env.scalar(sql, c=active.client.client_id) == first_use  # not rewritten
        clock.advance(20 * 86400)
        await env.admin.prune()
        assert await env.admin.get_client(idle["client_id"]) is None
        assert await env.admin.get_client(active.client.client_id) is not None
        assert await env.admin.get_client(static.client.client_id) is not None
        # consents of a pruned client go with it
        clock.advance(91 * 86400)
        assert await env.scalar(
            "SELECT COUNT(*) FROM ts_consents WHERE client_id = :c", c=active.client.client_id
        )
        await env.admin.prune()
        assert await env.admin.get_client(active.client.client_id) is None
        assert not await env.scalar(
            "SELECT COUNT(*) FROM ts_consents WHERE client_id = :c", c=active.client.client_id
        )
