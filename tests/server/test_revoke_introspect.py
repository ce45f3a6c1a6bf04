"""Revocation (RFC 7009) and introspection (RFC 7662), per issue 3."""

from __future__ import annotations

import httpx

from tests.server.harness import ServerEnv, basic
from tests.support.clients import refresh, resource_server, start

ACTIVE_FIELDS = {
    "active",
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "iss",
    "aud",
    "token_type",
    "jti",
}


async def test_introspection_of_an_active_access_token(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    rs = await resource_server(env)
    info = await env.introspect(rs, str(body["access_token"]))
    assert set(info) == ACTIVE_FIELDS
    assert info["active"] is True
    assert info["client_id"] == client.client.client_id
    assert info["iss"] == env.settings.issuer
    assert info["token_type"] == "Bearer"


async def test_introspecting_other_clients_tokens_needs_the_permission(
    server_env: ServerEnv,
) -> None:
    env = server_env
    _, body = await start(env)
    nosy = await resource_server(env, name="Nosy", can_introspect=False)
    assert await env.introspect(nosy, str(body["access_token"])) == {"active": False}


async def test_a_client_can_introspect_its_own_tokens(server_env: ServerEnv) -> None:
    client, body = await start(server_env)
    assert (await server_env.introspect(client, str(body["refresh_token"])))["active"] is True


async def test_a_refresh_token_is_active_only_to_its_own_client(server_env: ServerEnv) -> None:
    """RFC 7662 §2.1, §4: a resource server allowed to introspect sees access tokens of every
    client, but a refresh token is no one's business but its client's: anyone else is told
    ``{"active": false}``, so it cannot pass for an access token at an API."""
    env = server_env
    client, body = await start(env)
    rs = await resource_server(env)
    assert await env.introspect(rs, str(body["refresh_token"])) == {"active": False}
    assert (await env.introspect(rs, str(body["access_token"])))["active"] is True
    owned = await env.introspect(client, str(body["refresh_token"]))
    assert owned["active"] is True
    assert owned["token_type"] == "refresh_token"


async def test_inactive_tokens_are_exactly_active_false(server_env: ServerEnv) -> None:
    env = server_env
    _, body = await start(env)
    rs = await resource_server(env)
    forged = str(body["access_token"])[:-4] + "AAAA"
    for token in ["nonsense", "ts_rt_unknown", "ts_at_unknown", forged, "a.b.c", "x" * 9000]:
        response = await env.post_as(rs, env.settings.introspect_path, {"token": token})
        assert response.status_code == 200
        assert response.json() == {"active": False}, token[:20]
    env.clock.advance(601)
    assert await env.introspect(rs, str(body["access_token"])) == {"active": False}


async def test_introspection_requires_client_authentication(server_env: ServerEnv) -> None:
    env = server_env
    _, body = await start(env)
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post(env.settings.introspect_path, data={"token": body["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_public_clients_cannot_introspect(server_env: ServerEnv) -> None:
    env = server_env
    spa = await env.client(name="SPA", client_type="public")
    response = await env.post_as(spa, env.settings.introspect_path, {"token": "x"})
    assert response.status_code == 401


async def test_revoking_a_refresh_token_revokes_the_grant(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    response = await env.revoke(client, str(body["refresh_token"]), token_type_hint="refresh_token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 400
    assert await env.introspect(client, str(body["access_token"])) == {"active": False}


async def test_revoking_an_access_token_denies_its_jti(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    # the hint is a hint, not a filter: a wrong hint still revokes
    response = await env.revoke(client, str(body["access_token"]), token_type_hint="refresh_token")
    assert response.status_code == 200
    assert await env.introspect(client, str(body["access_token"])) == {"active": False}
    # the refresh token stays valid: revoking an access token does not end the grant
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 200


async def test_revoking_a_client_credentials_jwt(server_env: ServerEnv) -> None:
    env = server_env
    rs = await resource_server(env)
    token = (await env.token(rs, {"grant_type": "client_credentials"})).json()["access_token"]
    assert (await env.introspect(rs, token))["active"] is True
    assert (await env.revoke(rs, token)).status_code == 200
    assert await env.introspect(rs, token) == {"active": False}


async def test_a_client_credentials_jwt_expires_by_the_servers_clock(server_env: ServerEnv) -> None:
    """Nothing recorded for it: only its ``exp``, read against the injected clock, ends it."""
    env = server_env
    rs = await resource_server(env)
    issued = (await env.token(rs, {"grant_type": "client_credentials"})).json()
    assert (await env.introspect(rs, issued["access_token"]))["active"] is True
    env.clock.advance(issued["expires_in"])
    assert await env.introspect(rs, issued["access_token"]) == {"active": False}


async def test_unknown_tokens_revoke_with_200(server_env: ServerEnv) -> None:
    env = server_env
    client, _ = await start(env)
    for token in ["nonsense", "ts_rt_unknown", "ts_at_x", "a.b.c"]:
        assert (await env.revoke(client, token)).status_code == 200


async def test_a_client_cannot_revoke_another_clients_token(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    other = await env.client(name="Other")
    assert (await env.revoke(other, str(body["refresh_token"]))).status_code == 200
    assert (await env.revoke(other, str(body["access_token"]))).status_code == 200
    assert (await env.introspect(client, str(body["access_token"])))["active"] is True
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 200


async def test_revocation_requires_client_authentication(server_env: ServerEnv) -> None:
    env = server_env
    client, body = await start(env)
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        wrong = basic(client.client.client_id, "ts_cs_wrong")
        response = await c.post(
            env.settings.revoke_path,
            data={"token": body["refresh_token"]},
            headers={"Authorization": wrong},
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert (await refresh(env, client, str(body["refresh_token"]))).status_code == 200


async def test_revocation_refuses_an_unknown_hint_and_a_missing_token(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client, body = await start(env)
    bad_hint = await env.revoke(client, str(body["access_token"]), token_type_hint="id_token")
    assert bad_hint.status_code == 400
    assert bad_hint.json()["error"] == "unsupported_token_type"
    missing = await env.post_as(client, env.settings.revoke_path, {})
    assert missing.json()["error"] == "invalid_request"


async def test_metadata_advertises_revocation_and_introspection(server_env: ServerEnv) -> None:
    env = server_env
    meta = (await env.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["revocation_endpoint"] == env.settings.issuer + "/revoke"
    assert meta["introspection_endpoint"] == env.settings.issuer + "/introspect"
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
    }
