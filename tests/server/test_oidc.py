"""OpenID Connect (issue 4): ID tokens, userinfo, discovery, prompt, max_age, hints, SSO,
offline_access. Every ID token is validated independently with PyJWT against /jwks.json."""

from __future__ import annotations

from urllib.parse import urlsplit

import jwt
import pytest

from tests.server.harness import ServerEnv, query_of
from tests.support.oidc import login, oidc_client, verify_id_token


async def test_id_token_claims(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    user = await env.user()
    body = await login(env, client)
    claims = await verify_id_token(env, client, body)
    assert claims["sub"] == user.id
    assert claims["exp"] - claims["iat"] == env.settings.id_token_ttl
    assert claims["auth_time"] <= claims["iat"]
    assert claims["amr"] == ["pwd"]
    assert len(claims["sid"]) == 32


async def test_sub_is_stable_and_not_the_username(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    first = await verify_id_token(env, client, await login(env, client))
    await env.admin.update_profile("alice", email="alice@new.example", name="Alice A.")
    second = await verify_id_token(env, client, await login(env, client))
    assert first["sub"] == second["sub"]
    assert first["sub"] != "alice"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_per_client_id_token_algorithm(server_env: ServerEnv, alg: str) -> None:
    env = server_env
    client = await oidc_client(env, id_token_signed_response_alg=alg)
    await env.user()
    await verify_id_token(env, client, await login(env, client), alg=alg)


async def test_no_id_token_without_openid(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    body = await login(env, client, scope="docs:read", nonce=None)
    assert "id_token" not in body


async def test_nonce_is_optional_in_the_code_flow(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    body = await login(env, client, nonce=None)
    claims = await verify_id_token(env, client, body)
    assert "nonce" not in claims


async def test_jwks_carries_every_key_in_use(server_env: ServerEnv) -> None:
    jwks = (await server_env.http.get("/jwks.json")).json()
    assert {k["alg"] for k in jwks["keys"]} >= {"ES256", "RS256", "EdDSA"}
    assert all("d" not in k for k in jwks["keys"])


# -- userinfo ---------------------------------------------------------------------------------


async def test_userinfo_claims_by_scope(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    user = await env.user(name="Alice Liddell", email_verified=True)
    token = (await login(env, client))["access_token"]
    response = await env.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    info = response.json()
    assert info["sub"] == user.id
    assert info["name"] == "Alice Liddell"
    assert info["preferred_username"] == "alice"
    assert info["email"] == "alice@example.com"
    assert info["email_verified"] is True
    assert response.headers["cache-control"] == "no-store"
    profile_only = (await login(env, client, scope="openid profile"))["access_token"]
    info = (
        await env.http.get("/userinfo", headers={"Authorization": f"Bearer {profile_only}"})
    ).json()
    assert "email" not in info
    assert info["name"] == "Alice Liddell"


async def test_userinfo_by_post_form_body(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    token = (await login(env, client))["access_token"]
    response = await env.http.post("/userinfo", data={"access_token": token})
    assert response.status_code == 200
    both = await env.http.post(
        "/userinfo", data={"access_token": token}, headers={"Authorization": f"Bearer {token}"}
    )
    assert both.status_code == 400


async def test_userinfo_refuses_query_string_tokens(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    token = (await login(env, client))["access_token"]
    response = await env.http.get(f"/userinfo?access_token={token}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="tokensmith"'


async def test_userinfo_needs_the_openid_scope(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    token = (await login(env, client, scope="docs:read", nonce=None))["access_token"]
    response = await env.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_userinfo_refuses_invalid_and_refresh_tokens(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    body = await login(env, client, scope="openid offline_access")
    for token in ["garbage", body["refresh_token"], body["id_token"]]:
        response = await env.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


# -- discovery --------------------------------------------------------------------------------


async def test_openid_configuration(server_env: ServerEnv) -> None:
    env = server_env
    doc = (await env.http.get("/.well-known/openid-configuration")).json()
    issuer = env.settings.issuer
    assert doc["issuer"] == issuer
    for field in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ):
        assert doc[field].startswith(issuer + "/")
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "openid" in doc["scopes_supported"]
    rfc8414 = (await env.http.get("/.well-known/oauth-authorization-server")).json()
    assert rfc8414 == doc


# -- prompt, max_age, hints, SSO ----------------------------------------------------------


async def test_prompt_none_without_session_is_login_required(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    flow = await env.start_authorize(env.browser(), client, scope="openid", prompt="none")
    assert flow.response.status_code == 302
    assert flow.result["error"] == "login_required"
    assert flow.result["state"] == flow.params["state"]
    assert flow.result["iss"] == env.settings.issuer


async def test_prompt_none_without_consent_is_consent_required(server_env: ServerEnv) -> None:
    env = server_env
    other = await oidc_client(env, name="Other app")
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, other, ua)  # a session, consent for the other client only
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert flow.result["error"] == "consent_required"


async def test_prompt_none_with_session_and_consent_issues_a_code(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, client, ua, scope="openid")
    flow = await env.start_authorize(ua, client, scope="openid", prompt="none")
    assert "code" in flow.result


async def test_sso_second_client_needs_no_password(server_env: ServerEnv) -> None:
    env = server_env
    first = await oidc_client(env, name="First")
    second = await oidc_client(env, name="Second")
    await env.user()
    ua = env.browser()
    await login(env, first, ua)
    flow = await env.start_authorize(ua, second, scope="openid")
    # consent still applies, but no login page
    assert urlsplit(flow.location).path == env.settings.consent_path


async def test_prompt_login_forces_a_new_login(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    first = await verify_id_token(env, client, await login(env, client, ua))
    env.clock.advance(30)
    flow = await env.start_authorize(ua, client, scope="openid", prompt="login")
    assert urlsplit(flow.location).path == env.settings.login_path
    body = await login(env, client, ua, prompt="login")
    second = await verify_id_token(env, client, body)
    assert second["auth_time"] >= first["auth_time"] + 30


async def test_prompt_consent_asks_again(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, client, ua)
    flow = await env.start_authorize(ua, client, scope="openid profile email", prompt="consent")
    assert urlsplit(flow.location).path == env.settings.consent_path


async def test_max_age_forces_reauthentication(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    await login(env, client, ua)
    env.clock.advance(120)
    recent = await env.start_authorize(ua, client, scope="openid profile email", max_age="300")
    assert "code" in recent.result
    too_old = await env.start_authorize(ua, client, scope="openid profile email", max_age="60")
    assert urlsplit(too_old.location).path == env.settings.login_path
    body = await login(env, client, ua, max_age="60")
    claims = await verify_id_token(env, client, body)
    assert claims["auth_time"] >= int(env.clock()) - 60


async def test_max_age_must_be_a_number(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    flow = await env.start_authorize(env.browser(), client, scope="openid", max_age="soon")
    assert flow.result["error"] == "invalid_request"


async def test_login_hint_prefills_the_username(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    ua = env.browser()
    flow = await env.start_authorize(ua, client, scope="openid", login_hint="bob@example.com")
    page = await ua.get(flow.location)
    assert 'value="bob@example.com"' in page.text


async def test_id_token_hint_for_the_logged_in_user(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    body = await login(env, client, ua)
    flow = await env.start_authorize(
        ua, client, scope="openid profile email", prompt="none", id_token_hint=body["id_token"]
    )
    assert "code" in flow.result


async def test_id_token_hint_for_another_user_requires_login(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    await env.user("bob")
    bob_token = (await login(env, client, env.browser(), username="bob"))["id_token"]
    ua = env.browser()
    await login(env, client, ua)  # alice's session
    flow = await env.start_authorize(
        ua, client, scope="openid profile email", prompt="none", id_token_hint=bob_token
    )
    assert flow.result["error"] == "login_required"


async def test_id_token_hint_of_another_client_is_invalid_request(server_env: ServerEnv) -> None:
    """Red team: the hint's ``aud`` must contain the requesting client (OpenID Connect Core
    §3.1.2.1): another client's ID token of the same user is refused, with ``prompt=none``
    too, instead of standing for this client's user."""
    env = server_env
    client = await oidc_client(env)
    other = await oidc_client(env, name="Another app")
    await env.user()
    ua = env.browser()
    others_token = (await login(env, other, ua))["id_token"]
    for prompt in ("none", None):
        flow = await env.start_authorize(
            ua, client, scope="openid", prompt=prompt, id_token_hint=others_token
        )
        assert flow.result["error"] == "invalid_request", prompt
        assert "another client" in flow.result["error_description"]
        assert flow.result["state"] == flow.params["state"]


async def test_forged_id_token_hint_is_invalid_request(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    forged = jwt.encode({"iss": env.settings.issuer, "sub": "x", "aud": "y", "iat": 1}, "k" * 32)
    flow = await env.start_authorize(env.browser(), client, scope="openid", id_token_hint=forged)
    assert flow.result["error"] == "invalid_request"


async def test_offline_access_governs_refresh_tokens(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = env.browser()
    without = await login(env, client, ua, scope="openid")
    assert "refresh_token" not in without
    flow = await env.start_authorize(ua, client, scope="openid offline_access")
    assert urlsplit(flow.location).path == env.settings.consent_path  # offline_access asks
    with_offline = await login(env, client, ua, scope="openid offline_access")
    assert with_offline["refresh_token"].startswith("ts_rt_")
    refreshed = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": with_offline["refresh_token"]}
    )
    body = refreshed.json()
    body["_nonce"] = None
    claims = await verify_id_token(env, client, body)
    assert "nonce" not in claims


async def test_users_update_changes_userinfo(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user(email_verified=True)
    await env.admin.update_profile("alice", email="alice@new.example")
    token = (await login(env, client))["access_token"]
    info = (await env.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})).json()
    assert info["email"] == "alice@new.example"
    assert info["email_verified"] is False  # a changed email is unverified


def test_query_of_helper() -> None:
    assert query_of("https://rp.test/cb?code=a&state=b") == {"code": "a", "state": "b"}
