"""``POST /token`` with ``grant_type=authorization_code`` through HTTP, and the access token.

RFC 6749 §4.1.3/§5.1/§5.2, RFC 7636 §4.6, RFC 9700 §2.1.1/§4.2.4 (BCP-10, BCP-21, BCP-30,
BCP-31), OAuth 2.1 §4.1.3 (O21-02, O21-04, O21-18, O21-23, O21-24, O21-26..O21-28),
RFC 9068 (JWT access tokens), RFC 8707 (resource).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from tests.server.harness import (
    API,
    REDIRECT,
    ServerEnv,
    assert_oauth_error,
    basic,
    pkce_pair,
)
from tests.support.code_flow import code_flow, ready

# -- success -----------------------------------------------------------------------------------


async def test_success_response_fields_and_no_store(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    response = await env.redeem(client, flow.code, flow.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "docs:read"
    assert isinstance(body["access_token"], str)
    assert "refresh_token" not in body  # the client has no refresh_token grant


async def test_post_auth_and_public_client_redeem(server_env: ServerEnv) -> None:
    env = server_env
    post_client, flow = await ready(env, token_endpoint_auth_method="client_secret_post")
    response = await env.redeem(post_client, flow.code, flow.verifier, auth="post")
    assert response.status_code == 200, response.text
    public = await env.client(client_type="public", name="SPA")
    flow = await code_flow(env, public)
    response = await env.redeem(public, flow.code, flow.verifier, auth="none")
    assert response.status_code == 200, response.text


# -- the access token (RFC 9068) ---------------------------------------------------------------


async def test_access_token_is_rfc9068_jwt(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    user = await env.admin.find_user("alice")
    assert user is not None
    before = int(env.clock())
    response = await env.redeem(client, flow.code, flow.verifier)
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    jwks = (await env.browser().get("/jwks.json")).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = await env.decode_access_token(token)
    assert claims["iss"] == env.settings.issuer
    assert claims["sub"] == user.id
    assert claims["aud"] == API
    assert claims["client_id"] == client.client.client_id
    assert claims["scope"] == "docs:read"
    assert claims["iat"] == before
    assert claims["exp"] == claims["iat"] + 600
    assert len(claims["jti"]) >= 16
    assert claims["auth_time"] <= claims["iat"]


async def test_access_token_signature_checked_against_jwks(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    token = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
    head, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    forged = f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    with pytest.raises(jwt.InvalidSignatureError):
        await env.decode_access_token(forged)


async def test_each_token_has_its_own_jti(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(first_party=True)
    jtis = set()
    for _ in range(3):
        flow = await code_flow(env, client)
        token = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
        jtis.add((await env.decode_access_token(token))["jti"])
    assert len(jtis) == 3


async def test_resource_parameter_selects_audience(server_env: ServerEnv) -> None:
    env = server_env
    other = "https://reports.api.test"
    await env.api()
    await env.admin.create_api(identifier=other, scopes=["docs:read"])
    client = await env.client(apis=[other])  # allowed second API (any API was the old bug)
    flow = await code_flow(env, client, resource=other)
    token = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
    assert (await env.decode_access_token(token, audience=other))["aud"] == other
    with pytest.raises(jwt.InvalidAudienceError):
        await env.decode_access_token(token, audience=API)


# -- single use and replay (BCP-30, BCP-31) ----------------------------------------------------


async def test_code_is_single_use_and_replay_revokes_grant_bcp30_bcp31(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client, flow = await ready(env)
    first = await env.redeem(client, flow.code, flow.verifier)
    assert first.status_code == 200
    assert await env.scalar("SELECT revoked_at FROM ts_grants") is None
    env.clock.advance(30)  # oidcc-codereuse-30seconds
    second = await env.redeem(client, flow.code, flow.verifier)
    assert_oauth_error(second, "invalid_grant")
    assert "access_token" not in second.json()
    # The replay revoked what the first redemption issued, although the request itself failed.
    assert await env.count("ts_grants") == 1
    assert await env.scalar("SELECT revoked_at FROM ts_grants") == int(env.clock())
    introspector = await env.client(
        name="Docs API", grant_types=["client_credentials"], redirect_uris=[], can_introspect=True
    )
    status = await env.introspect(introspector, first.json()["access_token"])
    assert status["active"] is False


async def test_replay_with_another_client_also_fails(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    other = await env.client(name="Other")
    assert (await env.redeem(client, flow.code, flow.verifier)).status_code == 200
    assert_oauth_error(await env.redeem(other, flow.code, flow.verifier), "invalid_grant")


async def test_unknown_code_is_invalid_grant(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    for code in ("ts_ac_" + "A" * 43, "x", "ts_ac_"):
        verifier, _ = pkce_pair()
        assert_oauth_error(await env.redeem(client, code, verifier), "invalid_grant")
    assert await env.count("ts_grants") == 0


async def test_missing_code_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": "v"}
    assert_oauth_error(await env.token(client, form), "invalid_request")


async def test_expired_code_is_invalid_grant_o21_26(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    env.clock.advance(61)
    assert_oauth_error(await env.redeem(client, flow.code, flow.verifier), "invalid_grant")
    assert await env.count("ts_grants") == 0


async def test_code_just_before_expiry_works(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    env.clock.advance(59)
    assert (await env.redeem(client, flow.code, flow.verifier)).status_code == 200


async def test_code_bound_to_client_o21_28(server_env: ServerEnv) -> None:
    env = server_env
    _client, flow = await ready(env)
    other = await env.client(name="Other app")
    assert_oauth_error(await env.redeem(other, flow.code, flow.verifier), "invalid_grant")
    assert await env.count("ts_grants") == 0


async def test_public_client_cannot_redeem_confidential_clients_code(
    server_env: ServerEnv,
) -> None:
    env = server_env
    _client, flow = await ready(env)
    public = await env.client(client_type="public", name="SPA")
    assert_oauth_error(await env.redeem(public, flow.code, flow.verifier), "invalid_grant")


async def test_redirect_uri_mismatch_is_invalid_grant_o21_18(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(redirect_uris=[REDIRECT, "https://rp.test/other"])
    flow = await code_flow(env, client)
    response = await env.redeem(
        client, flow.code, flow.verifier, redirect_uri="https://rp.test/other"
    )
    assert_oauth_error(response, "invalid_grant")
    assert await env.count("ts_grants") == 0


async def test_redirect_uri_sent_at_token_but_not_at_authorize_must_match(
    server_env: ServerEnv,
) -> None:
    env = server_env
    client = await env.client()
    flow = await code_flow(env, client, redirect_uri=None)
    response = await env.redeem(
        client, flow.code, flow.verifier, redirect_uri="https://rp.test/cb/"
    )
    assert_oauth_error(response, "invalid_grant")


# -- PKCE (BCP-10, O21-02, O21-04, W-56, W-62) -------------------------------------------------


async def test_missing_verifier_is_invalid_grant_bcp10(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    assert_oauth_error(await env.redeem(client, flow.code, None), "invalid_grant")
    assert await env.count("ts_grants") == 0


async def test_wrong_verifier_is_invalid_grant(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    wrong, _ = pkce_pair()
    assert_oauth_error(await env.redeem(client, flow.code, wrong), "invalid_grant")


async def test_verifier_equal_to_challenge_is_invalid_grant(server_env: ServerEnv) -> None:
    """A plain-method substitution: sending the challenge itself as the verifier."""
    env = server_env
    client, flow = await ready(env)
    challenge = flow.params["code_challenge"]
    assert_oauth_error(await env.redeem(client, flow.code, challenge), "invalid_grant")


@pytest.mark.parametrize("verifier", ["a", "a" * 42, "a" * 129, "a" * 42 + "+", "a" * 43 + " "])
async def test_malformed_verifier_is_invalid_grant_o21_04(
    server_env: ServerEnv, verifier: str
) -> None:
    env = server_env
    client, flow = await ready(env)
    assert_oauth_error(await env.redeem(client, flow.code, verifier), "invalid_grant")


async def test_wrong_verifier_burns_the_code_w62(server_env: ServerEnv) -> None:
    """Policy (module docstring of grants/authorization_code): a failed attempt burns the code,
    so an intercepted code cannot be brute-forced; the right verifier afterwards fails too."""
    env = server_env
    client, flow = await ready(env)
    wrong, _ = pkce_pair()
    assert_oauth_error(await env.redeem(client, flow.code, wrong), "invalid_grant")
    assert_oauth_error(await env.redeem(client, flow.code, flow.verifier), "invalid_grant")
    assert await env.count("ts_access_tokens") == 0


async def test_failed_attempt_by_other_client_burns_the_code(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    other = await env.client(name="Other app")
    assert_oauth_error(await env.redeem(other, flow.code, flow.verifier), "invalid_grant")
    assert_oauth_error(await env.redeem(client, flow.code, flow.verifier), "invalid_grant")


# -- grant types (BCP-21) ----------------------------------------------------------------------


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:example:bogus", "token"])
async def test_refused_and_unknown_grants_unsupported_grant_type_bcp21(
    server_env: ServerEnv, grant_type: str
) -> None:
    env = server_env
    for client in (
        await env.client(),
        await env.client(client_type="public", name="SPA"),
    ):
        form = {"grant_type": grant_type, "username": "alice", "password": "correct horse"}
        assert_oauth_error(await env.token(client, form), "unsupported_grant_type")


async def test_missing_grant_type_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    form = {"code": flow.code, "code_verifier": flow.verifier, "redirect_uri": REDIRECT}
    assert_oauth_error(await env.token(client, form), "invalid_request")


async def test_client_without_the_grant_is_unauthorized_client(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client(grant_types=["client_credentials"], redirect_uris=[])
    verifier, _ = pkce_pair()
    form = {"grant_type": "authorization_code", "code": "ts_ac_x", "code_verifier": verifier}
    assert_oauth_error(await env.token(client, form), "unauthorized_client")


async def test_unauthenticated_request_is_invalid_client(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post("/token", data=form)
    assert_oauth_error(response, "invalid_client", 401)
    # The code was not touched by an unauthenticated request.
    assert (await env.redeem(client, flow.code, flow.verifier)).status_code == 200


async def test_get_token_endpoint_refused_o21_23(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    response = await env.browser().get(
        "/token",
        params={
            "grant_type": "authorization_code",
            "code": flow.code,
            "code_verifier": flow.verifier,
            "client_id": client.client.client_id,
            "client_secret": client.client_secret or "",
        },
    )
    assert_oauth_error(response, "invalid_request", 405)
    assert response.headers["allow"] == "POST"
    # The code is still unused.
    assert (await env.redeem(client, flow.code, flow.verifier)).status_code == 200


async def test_credentials_in_query_string_are_not_accepted_o21_19(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    query = f"client_id={client.client.client_id}&client_secret={client.client_secret}"
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
        response = await c.post("/token?" + query, data=form)
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json()


async def test_error_description_has_only_allowed_characters_o21_25(
    server_env: ServerEnv,
) -> None:
    """Descriptions that name a parameter never echo characters outside the RFC 6749 set."""
    env = server_env
    client = await env.client()
    for name in ('é"\\x', "a" * 200 + '"'):
        query = urlencode([("grant_type", "authorization_code"), (name, "1"), (name, "2")])
        headers = {
            "Authorization": basic(client.client.client_id, client.client_secret or ""),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as c:
            response = await c.post("/token", content=query, headers=headers)
        body = assert_oauth_error(response, "invalid_request")
        for ch in body["error_description"]:
            assert 0x20 <= ord(ch) <= 0x7E, repr(ch)
            assert ch not in '"\\', repr(ch)


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_redemptions_exactly_one_wins(server_env: ServerEnv) -> None:
    env = server_env
    client, flow = await ready(env)
    form = {
        "grant_type": "authorization_code",
        "code": flow.code,
        "code_verifier": flow.verifier,
        "redirect_uri": REDIRECT,
    }
    headers = {"Authorization": basic(client.client.client_id, client.client_secret or "")}
    async with httpx.AsyncClient(
        transport=env.transport, base_url=env.settings.issuer, timeout=120
    ) as c:
        responses = await asyncio.gather(
            *(c.post("/token", data=form, headers=headers) for _ in range(50))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == 49, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)
    assert await env.count("ts_grants") == 1
