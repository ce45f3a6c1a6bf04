"""The admin API (``/admin/v1``, ``server/routes/admin.py``) end to end over HTTP, on SQLite and
PostgreSQL: every operation, and every refusal (no token, a token of another audience, a refresh
token or an ID token as the access token, a missing scope, bad input, unknown ids)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from tests.server.harness import API, PASSWORD, ServerEnv, assert_oauth_error
from tests.support.clients import machine, refresh, start
from tokensmith.core.admin_access import ADMIN_SCOPES, admin_api_identifier
from tokensmith.core.registration import NewClient

A = "/admin/v1"


async def admin_token(env: ServerEnv, scopes: list[str] | None = None) -> str:
    created = await env.admin.bootstrap_admin(scopes=scopes)
    return await token_of(env, created)


async def token_of(env: ServerEnv, client: NewClient, **extra: str) -> str:
    response = await env.token(client, {"grant_type": "client_credentials", **extra})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


class Api:
    """The admin API as a script sees it: JSON over HTTP with a bearer token."""

    def __init__(self, env: ServerEnv, token: str) -> None:
        self.env = env
        self.token = token

    async def __call__(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kw.pop("headers", {})}
        return await self.env.http.request(method, A + path, json=body, headers=headers, **kw)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self(method, path, body)
        assert response.status_code == status, response.text
        assert response.headers["cache-control"].startswith("no-store")
        return response.json() if status != 204 else None


@pytest.fixture
async def api(server_env: ServerEnv) -> Api:
    return Api(server_env, await admin_token(server_env))


async def test_bootstrap_registers_the_admin_api_once(server_env: ServerEnv) -> None:
    first = await server_env.admin.bootstrap_admin()
    second = await server_env.admin.bootstrap_admin(scopes=["admin:users:read"])
    identifier = admin_api_identifier(server_env.settings.issuer)
    assert identifier == "https://as.test/admin/v1"
    assert first.client.apis == (identifier,)
    assert first.client.scopes == ADMIN_SCOPES
    assert second.client.scopes == ("admin:users:read",)
    assert first.client_secret
    assert second.client_secret
    assert [a.identifier for a in await server_env.admin.list_apis()] == [identifier]
    with pytest.raises(Exception, match="not admin scope"):
        await server_env.admin.bootstrap_admin(scopes=["docs:read"])


# -- APIs ----------------------------------------------------------------------------------------


async def test_apis(api: Api, server_env: ServerEnv) -> None:
    made = await api.ok("POST", "/apis", {"identifier": API, "scopes": ["docs:read"]}, 201)
    assert made == {
        "identifier": API,
        "name": API,
        "scopes": ["docs:read"],
        "descriptions": {},
        "dynamic_clients": False,
    }
    listed = await api.ok("GET", "/apis")
    assert API in [a["identifier"] for a in listed["apis"]]
    assert await api.ok("GET", "/apis/" + quote(API, safe="")) == made
    again = await api("POST", "/apis", {"identifier": API, "scopes": ["docs:read"]})
    assert "exists already" in assert_oauth_error(again, "conflict", 409)["error_description"]
    # in use: refused with the service's message, then forced
    client = await machine(server_env)
    used = await api("DELETE", "/apis/" + quote(API, safe=""))
    body = assert_oauth_error(used, "invalid_request")
    assert client.client.client_id in body["error_description"]
    bad = await api("DELETE", "/apis/" + quote(API, safe="") + "?force=yes")
    assert_oauth_error(bad, "invalid_request")
    with pytest.raises(AssertionError):  # the client-credentials client would have no API
        await api.ok("DELETE", "/apis/" + quote(API, safe="") + "?force=true")
    await server_env.admin.delete_client(client.client.client_id)
    gone = await api.ok("DELETE", "/apis/" + quote(API, safe=""))
    assert gone == {"deleted": API, "clients_changed": []}
    assert_oauth_error(await api("GET", "/apis/" + quote(API, safe="")), "not_found", 404)
    assert_oauth_error(await api("DELETE", "/apis/https%3A%2F%2Fnone.test"), "not_found", 404)


# -- clients -------------------------------------------------------------------------------------


async def test_clients(api: Api, server_env: ServerEnv) -> None:
    await server_env.api()
    made = await api.ok(
        "POST",
        "/clients",
        {
            "name": "Worker",
            "grant_types": ["client_credentials"],
            "scopes": ["docs:read"],
            "apis": [API],
        },
        201,
    )
    client_id = made["client_id"]
    assert made["client_secret"].startswith("ts_cs_")
    assert made["type"] == "confidential"
    shown = await api.ok("GET", f"/clients/{client_id}")
    assert "client_secret" not in shown
    assert shown["scopes"] == ["docs:read"]
    assert client_id in [c["client_id"] for c in (await api.ok("GET", "/clients"))["clients"]]
    # the secret works, then a new one replaces it
    worker = NewClient(await server_env.admin.require_client(client_id), made["client_secret"])
    await token_of(server_env, worker)
    rotated = await api.ok("POST", f"/clients/{client_id}/secret")
    assert rotated["client_id"] == client_id
    stale = await server_env.token(worker, {"grant_type": "client_credentials"})
    assert_oauth_error(stale, "invalid_client", 401)
    # update: validated as a registration; the id stays
    changed = await api.ok(
        "PATCH", f"/clients/{client_id}", {"name": "Renamed", "scopes": ["docs:read", "docs:write"]}
    )
    assert (changed["client_id"], changed["name"]) == (client_id, "Renamed")
    assert changed["scopes"] == ["docs:read", "docs:write"]
    refused = await api("PATCH", f"/clients/{client_id}", {"scopes": ["nope:none"]})
    assert_oauth_error(refused, "invalid_request")
    fixed = await api("PATCH", f"/clients/{client_id}", {"type": "public"})
    assert_oauth_error(fixed, "invalid_request")  # not a field of an update
    assert_oauth_error(await api("PATCH", f"/clients/{client_id}", {}), "invalid_request")
    # a client-credentials client with no API is refused, with the fix
    orphan = await api(
        "POST", "/clients", {"name": "x", "grant_types": ["client_credentials"], "scopes": []}
    )
    assert_oauth_error(orphan, "invalid_request")
    await api.ok("DELETE", f"/clients/{client_id}", status=204)
    for method, path in (
        ("GET", f"/clients/{client_id}"),
        ("PATCH", f"/clients/{client_id}"),
        ("DELETE", f"/clients/{client_id}"),
        ("POST", f"/clients/{client_id}/secret"),
    ):
        body = {"name": "y"} if method == "PATCH" else None
        assert_oauth_error(await api(method, path, body), "not_found", 404)


async def test_a_client_change_reaches_the_servers_cache_at_once(
    api: Api, server_env: ServerEnv
) -> None:
    await server_env.api()
    worker = await machine(server_env)
    await token_of(server_env, worker)  # cached now
    client_id = worker.client.client_id
    await api.ok("PATCH", f"/clients/{client_id}", {"scopes": ["docs:read", "docs:write"]})
    response = await server_env.token(
        worker, {"grant_type": "client_credentials", "scope": "docs:write"}
    )
    assert response.status_code == 200, response.text


async def test_an_api_left_out_of_a_patched_client_takes_its_grants_with_it(
    api: Api, server_env: ServerEnv
) -> None:
    """``PATCH /clients/{id}`` is ``Admin.update_client``: an API left out of the replaced list
    revokes the client's grants for it (their refresh tokens) in the same transaction; its
    grants for the APIs it keeps stay."""
    env = server_env
    both = ["docs:read", "docs:write"]
    await api.ok("POST", "/apis", {"identifier": "urn:b", "scopes": both}, 201)
    client, lost = await start(env, apis=["urn:b"])  # alice's tokens for API
    flow = await env.authorize(env.browser(), client, resource="urn:b")
    kept = (await env.redeem(client, flow.code, flow.verifier)).json()
    await api.ok("PATCH", f"/clients/{client.client.client_id}", {"apis": ["urn:b"]})
    assert_oauth_error(await refresh(env, client, str(lost["refresh_token"])), "invalid_grant")
    assert (await refresh(env, client, kept["refresh_token"])).status_code == 200


# -- users, grants, sessions ---------------------------------------------------------------------


async def test_a_user_is_not_created_while_the_hashing_pool_is_full(
    api: Api, server_env: ServerEnv
) -> None:
    """The admin API hashes on the server's bounded pool: beyond its queue
    (``password_hash_queue``), 503 with ``Retry-After`` at once, and nothing is written."""
    hasher = server_env.app.state.runtime.server.passwords
    held = [hasher.admit() for _ in range(hasher._limit)]  # every place taken
    try:
        body = {"username": "bob", "password": PASSWORD}
        refused = await api("POST", "/users", body)
        assert_oauth_error(refused, "temporarily_unavailable", 503)
        assert refused.headers["retry-after"] == "5"
        assert_oauth_error(await api("GET", "/users/bob"), "not_found", 404)
    finally:
        for place in held:
            place.close()
    assert hasher.pending == 0
    await api.ok("POST", "/users", body, 201)


async def test_users(api: Api, server_env: ServerEnv) -> None:
    made = await api.ok(
        "POST",
        "/users",
        {"username": "bob", "password": PASSWORD, "email": "bob@example.com", "name": "Bob"},
        201,
    )
    assert (made["username"], made["email_verified"], made["disabled"]) == ("bob", False, False)
    assert "password" not in made
    assert "password_hash" not in made
    assert await api.ok("GET", "/users/bob") == made
    assert await api.ok("GET", f"/users/{made['id']}") == made
    assert [u["username"] for u in (await api.ok("GET", "/users"))["users"]] == ["bob"]
    dup = await api("POST", "/users", {"username": "bob", "password": PASSWORD})
    assert_oauth_error(dup, "conflict", 409)
    short = await api("POST", "/users", {"username": "carol", "password": "short"})
    assert_oauth_error(short, "invalid_request")
    updated = await api.ok("PATCH", "/users/bob", {"name": "Robert", "email_verified": True})
    assert (updated["name"], updated["email_verified"]) == ("Robert", True)
    assert (await api.ok("POST", "/users/bob/disable"))["disabled"] is True
    assert (await api.ok("POST", "/users/bob/enable"))["disabled"] is False
    await api.ok("POST", "/users/bob/password", {"password": "another long passphrase"}, 204)
    hashed = await server_env.scalar("SELECT password_hash FROM ts_users WHERE username='bob'")
    assert server_env.admin.passwords().verify(hashed, "another long passphrase")
    await api.ok("DELETE", "/users/bob", status=204)
    assert_oauth_error(await api("GET", "/users/bob"), "not_found", 404)
    for method, path in (
        ("PATCH", "/users/bob"),
        ("DELETE", "/users/bob"),
        ("POST", "/users/bob/disable"),
        ("POST", "/users/bob/enable"),
        ("POST", "/users/bob/password"),
        ("GET", "/users/bob/grants"),
        ("GET", "/users/bob/sessions"),
        ("DELETE", "/users/bob/grants"),
        ("DELETE", "/users/bob/sessions"),
    ):
        body = {"password": PASSWORD} if path.endswith("password") else None
        body = {"name": "x"} if method == "PATCH" else body
        assert_oauth_error(await api(method, path, body), "not_found", 404)


async def test_grants_and_sessions(api: Api, server_env: ServerEnv) -> None:
    await server_env.api()
    client, tokens = await start(server_env)
    (grant,) = (await api.ok("GET", "/users/alice/grants"))["grants"]
    assert (grant["client_id"], grant["revoked_at"]) == (client.client.client_id, None)
    (session,) = (await api.ok("GET", "/users/alice/sessions"))["sessions"]
    assert session["id"] == grant["session_id"]
    # one grant: its tokens stop working
    revoked = await api.ok("DELETE", f"/users/alice/grants/{grant['id']}")
    assert revoked["revoked_at"] is not None
    assert (await server_env.introspect(client, str(tokens["access_token"])))["active"] is False
    again = await api("DELETE", f"/users/alice/grants/{grant['id']}")
    assert_oauth_error(again, "invalid_request")
    assert_oauth_error(await api("DELETE", "/users/alice/grants/nope"), "not_found", 404)
    # one session, then all
    await api.ok("DELETE", f"/users/alice/sessions/{session['id']}", status=204)
    assert (await api.ok("GET", "/users/alice/sessions"))["sessions"] == []
    assert_oauth_error(
        await api("DELETE", f"/users/alice/sessions/{session['id']}"), "not_found", 404
    )
    flow = await server_env.authorize(server_env.browser(), client, scope="docs:read")
    redeemed = await server_env.redeem(client, flow.code, flow.verifier)
    assert redeemed.status_code == 200
    assert await api.ok("DELETE", "/users/alice/sessions") == {"ended": 1}
    # the session is over, the grant and its tokens are not
    live = redeemed.json()
    assert (await server_env.introspect(client, live["access_token"]))["active"] is True
    assert await api.ok("DELETE", "/users/alice/grants") == {"revoked": 1}
    # "revoke all": every access and refresh token of hers is inactive
    for kind in ("access_token", "refresh_token"):
        assert (await server_env.introspect(client, live[kind]))["active"] is False, kind
    assert await api.ok("DELETE", "/users/alice/grants") == {"revoked": 0}


# -- keys ----------------------------------------------------------------------------------------


async def test_keys(api: Api, server_env: ServerEnv) -> None:
    keys = (await api.ok("GET", "/keys"))["keys"]
    assert {k["state"] for k in keys} == {"signing"}
    assert all("private" not in str(k) and "d" not in k for k in keys)
    added = await api.ok("POST", "/keys/rotate", {"alg": "ES256", "publish_ahead": 0}, 201)
    assert added["alg"] == "ES256"
    # published by this server at once
    assert added["kid"] in [
        k["kid"] for k in (await server_env.http.get("/jwks.json")).json()["keys"]
    ]
    states = {k["kid"]: k["state"] for k in (await api.ok("GET", "/keys"))["keys"]}
    assert states[added["kid"]] == "signing"
    assert "retiring" in states.values()
    assert await api.ok("POST", "/keys/prune") == {"pruned": 0}
    bad = await api("POST", "/keys/rotate", {"alg": "HS256"})
    assert "alg" in assert_oauth_error(bad, "invalid_request")["error_description"]
    # no body at all: the defaults
    response = await api("POST", "/keys/rotate")
    assert response.status_code == 201, response.text


# -- refusals ------------------------------------------------------------------------------------


async def test_no_token_is_401_with_a_challenge(server_env: ServerEnv) -> None:
    response = await server_env.http.get(A + "/users")
    assert_oauth_error(response, "invalid_token", 401)
    assert response.headers["www-authenticate"].startswith('Bearer realm="tokensmith"')
    basic = await server_env.http.get(A + "/users", headers={"Authorization": "Basic eDp5"})
    assert_oauth_error(basic, "invalid_token", 401)
    garbage = await server_env.http.get(A + "/users", headers={"Authorization": "Bearer x.y.z"})
    assert_oauth_error(garbage, "invalid_token", 401)


async def test_a_token_for_another_api_is_refused(server_env: ServerEnv) -> None:
    await server_env.api(scopes=("docs:read", "admin:users:read"))
    await server_env.admin.bootstrap_admin()
    other = await machine(server_env, scopes=["docs:read", "admin:users:read"])
    token = await token_of(server_env, other, scope="admin:users:read")
    response = await Api(server_env, token)("GET", "/users")
    body = assert_oauth_error(response, "invalid_token", 401)
    assert "not for the admin API" in body["error_description"]


async def test_refresh_and_id_tokens_are_not_access_tokens(api: Api, server_env: ServerEnv) -> None:
    """A user-facing client that may ask for the admin API still cannot use its refresh token
    or ID token as the access token."""
    admin_api = admin_api_identifier(server_env.settings.issuer)
    client = await server_env.client(
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "offline_access", "docs:read", "admin:users:read"],
        apis=[admin_api],
    )
    await server_env.user()
    flow = await server_env.authorize(
        server_env.browser(), client, scope="openid offline_access docs:read", prompt="consent"
    )
    redeemed = await server_env.redeem(client, flow.code, flow.verifier)
    assert redeemed.status_code == 200, redeemed.text
    tokens = redeemed.json()
    for kind in ("refresh_token", "id_token"):
        response = await api("GET", "/users", token=str(tokens[kind]))
        assert_oauth_error(response, "invalid_token", 401)
    # the access token of that grant is for the docs API: refused too
    response = await api("GET", "/users", token=str(tokens["access_token"]))
    assert_oauth_error(response, "invalid_token", 401)
    # a grant for the admin API itself: its access token works, its refresh token does not
    flow = await server_env.authorize(
        server_env.browser(), client, scope="admin:users:read", resource=admin_api
    )
    redeemed = await server_env.redeem(client, flow.code, flow.verifier, resource=admin_api)
    assert redeemed.status_code == 200, redeemed.text
    admin_tokens = redeemed.json()
    assert (await api("GET", "/users", token=admin_tokens["access_token"])).status_code == 200
    response = await api("GET", "/users", token=admin_tokens["refresh_token"])
    assert_oauth_error(response, "invalid_token", 401)


async def test_a_missing_scope_is_403_naming_it(server_env: ServerEnv) -> None:
    reader = Api(server_env, await admin_token(server_env, ["admin:users:read"]))
    ok = await reader("GET", "/users")
    assert ok.status_code == 200
    for method, path, scope in (
        ("POST", "/users", "admin:users:write"),
        ("GET", "/clients", "admin:clients:read"),
        ("GET", "/keys", "admin:keys:read"),
        ("GET", "/apis", "admin:apis:read"),
        ("GET", "/users/alice/grants", "admin:grants:read"),
        ("DELETE", "/users/alice/sessions", "admin:sessions:write"),
    ):
        response = await reader(method, path, {"username": "x", "password": PASSWORD})
        body = assert_oauth_error(response, "insufficient_scope", 403)
        assert scope in body["error_description"]
        assert f'scope="{scope}"' in response.headers["www-authenticate"]
    assert await server_env.count("ts_users") == 0  # nothing written


async def test_a_deleted_admin_client_loses_access_at_once(server_env: ServerEnv) -> None:
    created = await server_env.admin.bootstrap_admin()
    api = Api(server_env, await token_of(server_env, created))
    assert (await api("GET", "/users")).status_code == 200
    await server_env.admin.delete_client(created.client.client_id)
    assert_oauth_error(await api("GET", "/users"), "invalid_token", 401)


async def test_a_revoked_admin_token_is_refused(server_env: ServerEnv) -> None:
    created = await server_env.admin.bootstrap_admin()
    token = await token_of(server_env, created)
    response = await server_env.revoke(created, token)
    assert response.status_code == 200
    assert_oauth_error(await Api(server_env, token)("GET", "/users"), "invalid_token", 401)


async def test_bad_bodies_are_400_and_write_nothing(api: Api, server_env: ServerEnv) -> None:
    cases: list[tuple[dict[str, str], bytes]] = [
        ({"content-type": "application/json"}, b"{"),
        ({"content-type": "application/json"}, b"[]"),
        ({"content-type": "application/json"}, b'{"username": "x"}'),
        ({"content-type": "application/json"}, b'{"username": 1, "password": "p"}'),
        (
            {"content-type": "application/json"},
            b'{"username": "x", "password": "long enough pass", "admin": true}',
        ),
        ({"content-type": "text/plain"}, b'{"username": "x", "password": "long enough pass"}'),
        ({}, b""),
    ]
    for headers, content in cases:
        response = await api("POST", "/users", content=content, headers=headers)
        assert_oauth_error(response, "invalid_request")
    big = b'{"username": "' + b"x" * (server_env.settings.max_form_bytes + 10) + b'"}'
    response = await api(
        "POST", "/users", content=big, headers={"content-type": "application/json"}
    )
    assert_oauth_error(response, "invalid_request", 413)
    assert await server_env.count("ts_users") == 0


async def test_changes_are_audited_with_the_client_as_actor(
    api: Api, server_env: ServerEnv
) -> None:
    made = await api.ok("POST", "/users", {"username": "dave", "password": PASSWORD}, 201)
    await api.ok("POST", "/users/dave/disable")
    await api.ok("GET", "/users")
    await server_env.app.state.runtime.audit.flush()
    async with server_env.admin.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event, client_id, detail FROM ts_audit_events "
                    "WHERE event LIKE 'admin.%' ORDER BY id"
                )
            )
        ).all()
    actors = {r.client_id for r in rows}
    assert sorted(r.event for r in rows) == ["admin.create_user", "admin.disable_user"]
    (actor,) = actors
    assert actor.startswith("ts_ci_")
    # the target: the user made (by id), then the one named in the path
    targets = [r.detail if isinstance(r.detail, dict) else json.loads(r.detail) for r in rows]
    assert [t["target"] for t in targets] == [made["id"], "dave"]


async def test_admin_endpoints_are_rate_limited(settings: Any, clock: Any) -> None:
    limited = settings.model_copy(update={"token_rate_limit": "3/minute"})
    async with ServerEnv.start(limited, clock) as env:
        api = Api(env, await admin_token(env))
        statuses = [(await api("GET", "/users")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_no_cors_for_the_admin_api(api: Api, server_env: ServerEnv) -> None:
    origin = {"Origin": "https://evil.test"}
    response = await api("GET", "/users", headers=origin)
    assert "access-control-allow-origin" not in response.headers
    preflight = await server_env.http.options(
        A + "/users", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_refused_tokens_count_against_the_address(settings: Any, clock: Any) -> None:
    limited = settings.model_copy(update={"token_failure_rate_limit": "2/minute"})
    async with ServerEnv.start(limited, clock) as env:
        good = Api(env, await admin_token(env))
        api = Api(env, "not-a-token")
        statuses = [(await api("GET", "/users")).status_code for _ in range(3)]
        # past the limit, even a good token from that address waits
        late = await good("GET", "/users")
    assert statuses == [401, 401, 429]
    assert_oauth_error(late, "slow_down", 429)
    assert late.headers["retry-after"].isdigit()


async def test_error_descriptions_keep_to_the_error_format(api: Api) -> None:
    """RFC 6749 §5.2's characters only, even when the message echoes a name from the request."""
    response = await api("GET", "/users/" + quote('Jos\u00e9 "x"\\'))
    body = assert_oauth_error(response, "not_found", 404)
    assert body["error_description"] == "no user Jos? ?x??"


async def test_opaque_admin_tokens_work_too(server_env: ServerEnv) -> None:
    created = await server_env.admin.bootstrap_admin()
    await server_env.admin.update_client(
        created.client.client_id, changes={"access_token_format": "opaque"}
    )
    token = await token_of(server_env, created)
    assert token.startswith("ts_at_")
    api = Api(server_env, token)
    assert (await api("GET", "/users")).status_code == 200
    await server_env.revoke(created, token)
    assert_oauth_error(await api("GET", "/users"), "invalid_token", 401)


async def test_with_redis_client_changes_reach_the_server_at_once(redis_env: ServerEnv) -> None:
    """PostgreSQL + Redis: a client changed or deleted through the admin API is seen by the
    token endpoint at once (no stale cache entry)."""
    await redis_env.api()
    worker = await machine(redis_env)
    await token_of(redis_env, worker)  # cached now
    api = Api(redis_env, await admin_token(redis_env))
    client_id = worker.client.client_id
    await api.ok("PATCH", f"/clients/{client_id}", {"scopes": ["docs:read", "docs:write"]})
    response = await redis_env.token(
        worker, {"grant_type": "client_credentials", "scope": "docs:write"}
    )
    assert response.status_code == 200, response.text
    await api.ok("DELETE", f"/clients/{client_id}", status=204)
    gone = await redis_env.token(worker, {"grant_type": "client_credentials"})
    assert_oauth_error(gone, "invalid_client", 401)
